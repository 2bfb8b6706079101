from django.contrib import admin
from django.urls import path

from calls.amocrm import views

app_name = "amocrm"
urlpatterns = [
    path("oauth/callback/", views.oauth_callback, name="callback"),
    path("connections/<int:pk>/connect/", admin.site.admin_view(views.connect), name="connect"),
    path("connections/<int:pk>/sync/", admin.site.admin_view(views.sync_range), name="sync"),
]
