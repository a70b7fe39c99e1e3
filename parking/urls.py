from django.urls import path

from parking import account_views, passage_views, views

urlpatterns = [
    # First: the app asks for it on every launch, and Django tries the patterns in order.
    path(
        "parking_sessions/current",
        views.CurrentParkingSessionView.as_view(),
        name="current-parking-session",
    ),
    path("smart_keys", views.SmartKeysView.as_view(), name="smart-keys"),
    path("secured_parkings", views.SecuredParkingsView.as_view(), name="secured-parkings"),
    path("parking_sessions", views.ParkingSessionsView.as_view(), name="parking-sessions"),
    path(
        "parking_sessions/<int:session_id>",
        views.ParkingSessionDetailView.as_view(),
        name="parking-session",
    ),
    path("parking_sessions/<int:session_id>/entrance_try", views.EntranceTryView.as_view()),
    path("parking_sessions/<int:session_id>/enter", views.ConfirmEntranceView.as_view()),
    path("parking_sessions/<int:session_id>/exit", views.RequestExitView.as_view()),
    path("parking_sessions/<int:session_id>/exit_try", views.ExitTryView.as_view()),
    path("parking_sessions/<int:session_id>/finalize", views.FinalizeView.as_view()),
    path("parking_sessions/<int:session_id>/cancel", views.CancelView.as_view()),
    path("parking_sessions/<int:session_id>/open_barrier", views.OpenBarrierView.as_view()),
    path("parking_sessions/<int:session_id>/payment", views.ParkingSessionPaymentView.as_view()),
    path("parking_sessions/<int:session_id>/pay", views.PayParkingSessionView.as_view()),
    path("parking_sessions/<int:session_id>/receipt", views.ReceiptView.as_view()),
    path("passages", passage_views.PassagesView.as_view(), name="passages"),
    path(
        "secured_parkings/<int:parking_id>/time_statement",
        passage_views.TimeStatementView.as_view(),
        name="time-statement",
    ),
    path("account", account_views.AccountView.as_view(), name="account"),
    path("account/export", account_views.AccountExportView.as_view(), name="account-export"),
]
