from django.urls import path

from parking import views

urlpatterns = [
    path(
        "parking_sessions/current",
        views.CurrentParkingSessionView.as_view(),
        name="current-parking-session",
    ),
]
