from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/booking/", include("liveclass_booking.api.urls")),
]
