from django.urls import path

from payments import views

urlpatterns = [
    path("payment_methods", views.PaymentMethodsView.as_view(), name="payment-methods"),
    path("payment_methods/<int:card_id>", views.PaymentMethodView.as_view()),
    path("payment_methods/<int:card_id>/default", views.DefaultPaymentMethodView.as_view()),
]
