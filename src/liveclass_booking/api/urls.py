"""Mount with ``path("api/booking/", include("liveclass_booking.api.urls"))``.

Explicit basenames keep URL names stable when a host swaps the models. The mount point
itself answers the API root: a link to every collection (the browsable API's index).
"""

from django.urls import include, path, re_path
from rest_framework.routers import DefaultRouter

from . import busy_views, calendar_views, views

app_name = "liveclass_booking"

# No format suffixes: an id with a dot stays a 404 (see views.not_found).
router = DefaultRouter()
router.include_format_suffixes = False
router.APIRootView = views.APIRootView
router.register("sessions", views.SessionViewSet, basename="session")
router.register("bookings", views.BookingViewSet, basename="booking")
router.register("waitlist", views.WaitlistViewSet, basename="waitlist")
router.register("series", views.SeriesViewSet, basename="series")
router.register("policies", views.PolicyViewSet, basename="policy")
router.register("availability", views.AvailabilityViewSet, basename="availability")
router.register("slots", views.SlotViewSet, basename="slot")
router.register("calendar/tokens", calendar_views.CalendarTokenViewSet, basename="calendar-token")
router.register("busy-sources", busy_views.BusySourceViewSet, basename="busy-source")
router.register("busy-periods", busy_views.BusyPeriodViewSet, basename="busy-period")

urlpatterns = [
    path("", include(router.urls)),
    path(
        "calendar/feed/<str:token>.ics",
        calendar_views.CalendarFeedView.as_view(),
        name="calendar-feed",
    ),
    # [\s\S]: any character, a newline too (a "." would let "/%0A/" fall through to HTML).
    re_path(r"^(?P<path>[\s\S]*)$", views.not_found, name="not-found"),
]
