/**
 * MedAI outbound AI call — VoxEngine scenario.
 *
 * Started by MedAI through the Management API (StartScenarios) with custom data
 * {"t": "<call token>", "u": "<MedAI base URL>"}; everything else is fetched from MedAI.
 * The HTTP contract, the signature scheme and the deployment steps are in README.md next to this file.
 *
 * Flow: read custom data → GET settings (signed) → callPSTN with answering-machine detection →
 * on a human: record, greet (TTS), then turns of ASR → POST turn to MedAI (our LLM) → TTS reply →
 * on hang-up / busy / no answer / voicemail / error: POST the signed result → terminate.
 *
 * VoxEngine APIs used (docs: voximplant.com/docs/references/voxengine): AppEvents.Started/Terminating,
 * VoxEngine.customData/getSecretValue/callPSTN/createASR/terminate, CallEvents.Connected/Failed/
 * Disconnected/PlaybackFinished/RecordStarted, Call.say/record/sendMediaTo/stopMediaTo/hangup,
 * AMD.create + AMD.Events.DetectionComplete, ASREvents.*, Net.httpRequestAsync, Crypto.hmac_sha256, uuidgen.
 */

require(Modules.ASR);
require(Modules.AMD);

const SECRET_NAME = "MEDAI_WEBHOOK_SECRET"; // Voximplant secret storage, same value as VOXIMPLANT_WEBHOOK_SECRET
const SETTINGS_PATH = "/api/outbound/scenario/"; // + <token>/
const WEBHOOK_PATH = "/api/outbound/webhook/";
const HTTP_ATTEMPTS = 4; // settings, turns and the result: 1 try + 3 retries on network errors / 5xx / 408 / 429
const HTTP_TIMEOUT_SECONDS = 10;
const BACKOFF_MS = [1000, 2000, 4000];
const AMD_TIMEOUT_MS = 6500; // the documented default; counted from CallEvents.Connected
const MAX_UTTERANCE_MS = 30000;

const DEFAULTS = {
  amd_model: "ru",
  ring_timeout_seconds: 40,
  max_duration_seconds: 300,
  silence_timeout_seconds: 8,
  max_turns: 12,
  record: true,
  voicemail_message: null,
  reprompt: "Вы меня слышите?",
  goodbye: "Спасибо, до свидания!",
};

const state = {
  sessionId: null,
  token: null,
  base: null,
  secret: null,
  settings: null,
  voice: null,
  asrProfile: null,
  call: null,
  amd: null,
  connectedAt: null,
  talking: false,
  status: null, // completed | no_answer | busy | voicemail | failed — the first outcome wins
  error: null,
  sipCode: null,
  duration: 0,
  recordUrl: null,
  transcript: [],
  waiters: new Set(), // resolvers of pending say/listen promises, released when the call ends
  timers: [],
  disconnected: false,
  reported: false,
};

VoxEngine.addEventListener(AppEvents.Started, (event) => {
  state.sessionId = event.sessionId;
  main().catch((err) => conclude("failed", "scenario_error: " + describe(err)));
});

// The session is dying (VoxEngine.terminate or limits). One HTTP request is still allowed here:
// if the result was never sent, send it now, once, without retries.
VoxEngine.addEventListener(AppEvents.Terminating, () => {
  if (state.reported || !state.secret || !state.base) return;
  state.reported = true;
  if (!state.status) setOutcome("failed", "session_terminated", null);
  const body = asciiJson(buildResult());
  Net.httpRequestAsync(state.base + WEBHOOK_PATH, requestOptions("POST", WEBHOOK_PATH, body));
});

// -- start -------------------------------------------------------------------------------------------

async function main() {
  let data = null;
  try {
    data = JSON.parse(VoxEngine.customData() || "null");
  } catch (err) {
    data = null;
  }
  if (!data || typeof data.t !== "string" || typeof data.u !== "string" || !/^https?:\/\//.test(data.u)) {
    Logger.write("MedAI: custom data must be {\"t\": token, \"u\": base URL}; nothing to report to");
    VoxEngine.terminate();
    return;
  }
  state.token = data.t;
  state.base = data.u.replace(/\/+$/, "");
  state.secret = VoxEngine.getSecretValue(SECRET_NAME);
  if (!state.secret) {
    Logger.write("MedAI: secret " + SECRET_NAME + " is not set in the application's secret storage");
    VoxEngine.terminate();
    return;
  }

  let settings;
  try {
    settings = readSettings(await request("GET", SETTINGS_PATH + encodeURIComponent(state.token) + "/"));
  } catch (err) {
    conclude("failed", "settings_unavailable: " + describe(err));
    return;
  }
  state.settings = settings;
  dial();
}

function readSettings(raw) {
  if (!raw || typeof raw !== "object") throw new Error("settings must be a JSON object");
  const s = Object.assign({}, DEFAULTS, raw);
  for (const key of ["phone", "caller_id", "voice", "asr_profile", "greeting"]) {
    if (typeof s[key] !== "string" || !s[key]) throw new Error("settings." + key + " is required");
  }
  state.voice = lookup(VoiceList, s.voice);
  if (state.voice === undefined) throw new Error("unknown voice " + s.voice);
  state.asrProfile = lookup(ASRProfileList, s.asr_profile);
  if (state.asrProfile === undefined) throw new Error("unknown ASR profile " + s.asr_profile);
  return s;
}

// "Google.ru_RU_Wavenet_A" → VoiceList.Google.ru_RU_Wavenet_A
function lookup(root, dotted) {
  return String(dotted)
    .split(".")
    .reduce((node, key) => (node !== undefined && node !== null && key in node ? node[key] : undefined), root);
}

// -- dialling ----------------------------------------------------------------------------------------

function dial() {
  const s = state.settings;
  const params = {};
  const model = s.amd_model ? Object.keys(AMD.Model).find((k) => AMD.Model[k] === s.amd_model) : null;
  if (model) {
    state.amd = AMD.create({ model: AMD.Model[model], timeout: AMD_TIMEOUT_MS });
    state.amd.addEventListener(AMD.Events.DetectionComplete, onAmdResult);
    state.amd.addEventListener(AMD.Events.DetectionError, (e) => {
      Logger.write("MedAI: AMD error: " + e.message);
      startConversation();
    });
    params.amd = state.amd;
  }

  const call = VoxEngine.callPSTN(s.phone, s.caller_id, params);
  state.call = call;
  call.addEventListener(CallEvents.Connected, onConnected);
  call.addEventListener(CallEvents.Failed, onFailed);
  call.addEventListener(CallEvents.Disconnected, onDisconnected);
  call.addEventListener(CallEvents.RecordStarted, (e) => {
    state.recordUrl = e.url;
  });

  later(s.ring_timeout_seconds * 1000, () => {
    if (state.connectedAt === null && !state.status) {
      setOutcome("no_answer", null, null);
      call.hangup();
    }
  });
}

function onConnected() {
  state.connectedAt = Date.now();
  const s = state.settings;
  if (s.record) state.call.record({ stereo: true });
  later(s.max_duration_seconds * 1000, () => conclude("completed", null, null));
  if (!state.amd) {
    startConversation();
  } else {
    // AMD answers within its timeout; if it stays silent, talk anyway.
    later(AMD_TIMEOUT_MS + 2000, startConversation);
  }
}

function onAmdResult(event) {
  if (event.resultClass === AMD.ResultClass.VOICEMAIL) {
    onVoicemail();
  } else if (event.resultClass === AMD.ResultClass.HUMAN || event.resultClass === AMD.ResultClass.TIMEOUT) {
    startConversation();
  }
  // CALL_ENDED: CallEvents.Disconnected/Failed handle it.
}

async function onVoicemail() {
  if (state.talking || state.status) return;
  state.talking = true;
  setOutcome("voicemail", null, null);
  if (state.settings.voicemail_message) await say(state.settings.voicemail_message);
  hangUp();
}

// SIP final responses: voximplant.com/docs/references/voxengine/callevents#failed
function onFailed(event) {
  const code = event.code;
  if (code === 486 || code === 600 || code === 603) setOutcome("busy", null, code);
  else if (code === 408 || code === 480 || code === 487) setOutcome("no_answer", null, code);
  else if (code === 404 || code === 484 || code === 410) setOutcome("failed", "invalid_number", code);
  else if (code === 402) setOutcome("failed", "insufficient_funds", code);
  else setOutcome("failed", "sip_" + code + ": " + event.reason, code >= 100 && code <= 699 ? code : null);
  state.disconnected = true;
  releaseWaiters();
  report();
}

function onDisconnected(event) {
  state.disconnected = true;
  state.duration = typeof event.duration === "number" ? event.duration : elapsed();
  if (!state.status) setOutcome(state.connectedAt === null ? "no_answer" : "completed", null, null);
  releaseWaiters();
  report();
}

// -- the conversation ------------------------------------------------------------------------------

async function startConversation() {
  if (state.talking || state.status || state.disconnected) return;
  state.talking = true;
  const s = state.settings;
  await say(s.greeting);
  let silences = 0;
  let turns = 0;
  while (!state.status && !state.disconnected && turns < s.max_turns) {
    const heard = await listen(s.silence_timeout_seconds * 1000);
    if (state.status || state.disconnected) return;
    if (!heard) {
      silences += 1;
      if (silences >= 2) break;
      await say(s.reprompt);
      continue;
    }
    silences = 0;
    turns += 1;
    let answer;
    try {
      const turnPath = SETTINGS_PATH + encodeURIComponent(state.token) + "/turn/";
      answer = await request("POST", turnPath, asciiJson({ text: heard, transcript: state.transcript }));
    } catch (err) {
      Logger.write("MedAI: turn failed: " + describe(err));
      answer = { reply: s.goodbye, end: true };
    }
    const reply = answer && typeof answer.reply === "string" ? answer.reply : s.goodbye;
    await say(reply);
    if (!answer || answer.end !== false) break;
  }
  if (!state.status && !state.disconnected && turns >= s.max_turns) await say(s.goodbye);
  conclude("completed", null, null);
}

function say(text) {
  return new Promise((resolve) => {
    if (!text || state.disconnected) {
      resolve();
      return;
    }
    const call = state.call;
    const start = elapsed();
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      call.removeEventListener(CallEvents.PlaybackFinished, finish);
      state.waiters.delete(finish);
      state.transcript.push({ speaker: "ai", start: start, end: Math.max(start, elapsed()), text: text });
      resolve();
    };
    state.waiters.add(finish);
    call.addEventListener(CallEvents.PlaybackFinished, finish);
    call.say(text, { voice: state.voice });
  });
}

function listen(timeoutMs) {
  return new Promise((resolve) => {
    if (state.disconnected) {
      resolve(null);
      return;
    }
    const call = state.call;
    // One utterance per turn: the first Result stops the ASR (recognition would otherwise go on).
    const asr = VoxEngine.createASR({ profile: state.asrProfile });
    let timer = null;
    let settled = false;
    let captureStart = null;
    const finish = (text) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      state.waiters.delete(abort);
      try {
        call.stopMediaTo(asr);
        asr.stop();
      } catch (err) {
        // the call or the ASR is already gone
      }
      resolve(text);
    };
    const abort = () => finish(null);
    state.waiters.add(abort);
    asr.addEventListener(ASREvents.CaptureStarted, () => {
      captureStart = elapsed();
      clearTimeout(timer);
      timer = setTimeout(abort, MAX_UTTERANCE_MS);
    });
    asr.addEventListener(ASREvents.Result, (event) => {
      const text = String(event.text || "").trim();
      if (text) {
        const start = captureStart === null ? elapsed() : captureStart;
        state.transcript.push({ speaker: "customer", start: start, end: Math.max(start, elapsed()), text: text });
      }
      finish(text || null);
    });
    asr.addEventListener(ASREvents.ASRError, (event) => {
      Logger.write("MedAI: ASR error: " + event.error);
      finish(null);
    });
    call.sendMediaTo(asr);
    timer = setTimeout(abort, timeoutMs);
  });
}

// -- the end -----------------------------------------------------------------------------------------

function setOutcome(status, error, sipCode) {
  if (state.status) return;
  state.status = status;
  state.error = error;
  state.sipCode = sipCode;
}

// Record the outcome and end the call; the result goes out from Disconnected/Failed, or right away
// when there is no live call.
function conclude(status, error, sipCode) {
  setOutcome(status, error, sipCode);
  if (state.call && !state.disconnected) hangUp();
  else report();
}

function hangUp() {
  try {
    state.call.hangup();
  } catch (err) {
    report();
  }
}

function releaseWaiters() {
  for (const release of Array.from(state.waiters)) release();
}

function buildResult() {
  const spoke = state.status === "completed" || state.status === "voicemail";
  return {
    call_token: state.token,
    session_id: state.sessionId,
    status: state.status,
    duration_seconds: spoke ? Math.max(0, Number(state.duration) || elapsed()) : 0,
    transcript: spoke && state.transcript.length ? state.transcript : null,
    record_url: state.recordUrl,
    error: state.status === "failed" ? String(state.error || "unknown_error").slice(0, 1000) : null,
    sip_code: state.sipCode,
  };
}

async function report() {
  if (state.reported) return;
  state.reported = true;
  state.timers.forEach((id) => clearTimeout(id));
  try {
    await request("POST", WEBHOOK_PATH, asciiJson(buildResult()));
  } catch (err) {
    Logger.write("MedAI: result not delivered: " + describe(err));
  }
  VoxEngine.terminate();
}

// -- HTTP to MedAI, signed -------------------------------------------------------------------------------

// Signature: hex HMAC-SHA256 of "v1:<ts>:<nonce>:" + content, where content is the body, or the path for a GET.
function requestOptions(method, path, body) {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const nonce = uuidgen();
  const content = body === undefined ? path : body;
  const digest = String(Crypto.hmac_sha256(state.secret, "v1:" + timestamp + ":" + nonce + ":" + content)).toLowerCase();
  const headers = {
    "X-MedAI-Timestamp": timestamp,
    "X-MedAI-Nonce": nonce,
    "X-MedAI-Signature": "v1=" + digest,
    Accept: "application/json",
  };
  const options = { method: method, headers: headers, timeout: HTTP_TIMEOUT_SECONDS };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    options.postData = body;
  }
  return options;
}

async function request(method, path, body) {
  let lastError = "no attempt";
  for (let attempt = 0; attempt < HTTP_ATTEMPTS; attempt += 1) {
    if (attempt > 0) await sleep(BACKOFF_MS[Math.min(attempt - 1, BACKOFF_MS.length - 1)]);
    let response;
    try {
      // A fresh timestamp and nonce per attempt; MedAI de-duplicates by call token.
      response = await Net.httpRequestAsync(state.base + path, requestOptions(method, path, body));
    } catch (err) {
      lastError = describe(err);
      continue;
    }
    const code = response.code;
    if (code >= 200 && code < 300) {
      if (!response.text) return null;
      try {
        return JSON.parse(response.text);
      } catch (err) {
        throw new Error(method + " " + path + ": answer is not JSON");
      }
    }
    lastError = "HTTP " + code + (response.error ? " " + response.error : "");
    // Network errors (code ≤ 0), timeouts, 429 and 5xx are worth another try; other 4xx are not.
    if (code >= 400 && code < 500 && code !== 408 && code !== 429) break;
  }
  throw new Error(method + " " + path + " failed: " + lastError);
}

// -- helpers ------------------------------------------------------------------------------------------

// JSON with every non-ASCII character escaped, so the bytes MedAI verifies are exactly the signed string.
function asciiJson(value) {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (ch) => "\\u" + ("0000" + ch.charCodeAt(0).toString(16)).slice(-4));
}

function elapsed() {
  if (state.connectedAt === null) return 0;
  return Math.round((Date.now() - state.connectedAt) / 10) / 100;
}

function later(ms, fn) {
  state.timers.push(setTimeout(fn, ms));
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function describe(err) {
  return err && err.message ? err.message : String(err);
}
