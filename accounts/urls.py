from django.urls import path

from accounts import views

urlpatterns = [
    path("accounts", views.AccountSignUpView.as_view(), name="accounts"),
]
