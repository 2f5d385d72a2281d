from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api-auth/", include("rest_framework.urls")),
    # liveclass_booking: the REST API under a prefix of the host's choosing.
    path("api/booking/", include("liveclass_booking.api.urls")),
]
