from django.urls import path

from smart_keys import views

urlpatterns = [
    path("smart_keys", views.SmartKeysView.as_view(), name="smart-keys"),
]
