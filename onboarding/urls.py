from django.urls import include, path

urlpatterns = [
    path("", include("onboarding.views.accounts")),
    path("", include("onboarding.views.team")),
    path("", include("onboarding.views.wizard")),
    path("", include("onboarding.views.step_forms")),
    path("", include("onboarding.views.audit")),
    path("", include("onboarding.views.dashboard")),
    path("", include("onboarding.views.support_tenant")),
    path("", include("onboarding.views.recheck")),
    path("", include("onboarding.views.approved_hosts")),
    path("", include("onboarding.views.integrations")),
    path("api/v1/", include("onboarding.api.urls")),
    path("", include("onboarding.views.support_staff")),
]

handler400 = "onboarding.views.errors.bad_request"
handler403 = "onboarding.views.errors.forbidden"
handler404 = "onboarding.views.errors.not_found"
handler500 = "onboarding.views.errors.server_error"
