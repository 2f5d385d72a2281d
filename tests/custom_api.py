"""A host's customised API, as docs/api.md describes: a subclassed serializer and viewset
mounted on a router of its own with only some routes. A URLconf of its own, for tests."""

from typing import Any

from django.urls import include, path
from rest_framework import serializers
from rest_framework.routers import SimpleRouter

from liveclass_booking.api import serializers as booking_serializers
from liveclass_booking.api import views


class BookingSerializer(booking_serializers.BookingSerializer):
    course_name = serializers.SerializerMethodField()

    class Meta(booking_serializers.BookingSerializer.Meta):
        fields = (*booking_serializers.BookingSerializer.Meta.fields, "course_name")
        read_only_fields = fields

    def get_course_name(self, obj: Any) -> str:
        return str(obj.course)


class BookingViewSet(views.BookingViewSet):
    response_serializer_class = BookingSerializer

    def get_queryset(self) -> Any:
        return super().get_queryset().select_related("course")


router = SimpleRouter()
router.register("bookings", BookingViewSet, basename="booking")

urlpatterns = [path("api/custom/", include((router.urls, "custom")))]
