"""Report file builders: PDF (reportlab) and XLSX (openpyxl, write-only). Pure functions of
:class:`reports.selectors.ReportData` — no database writes, no network, no LLM."""
