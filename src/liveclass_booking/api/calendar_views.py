"""Calendar endpoints: feed tokens (``calendar/tokens/``) and the feed itself
(``calendar/feed/{token}.ics``, no login)."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.utils import timezone
from django.utils.cache import get_conditional_response
from django.utils.http import http_date
from rest_framework import mixins, status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from ..calendar.feed import user_feed
from ..calendar.tokens import active_tokens, create_token, feed_owner, hash_secret, revoke_token
from ..models import CalendarFeedToken
from . import serializers as s
from .errors import exception_handler
from .ics import AnyAccept, calendar_response, calendar_schema, in_language_of
from .schema import extend_schema, extend_schema_view, operation
from .throttling import WriteRateThrottle
from .views import LiveClassViewSet


@extend_schema_view(
    list=operation(
        "liveclass_calendar_tokens_list",
        "List your calendar feed tokens",
        "The user's active feed tokens, newest first, each with its name and the first "
        "characters of its secret.",
        s.CalendarTokenSerializer(many=True),
        404,
    ),
    create=operation(
        "liveclass_calendar_tokens_create",
        "Create a calendar feed token",
        "Answers the token's secret and the feed's address, once: store them now. To rotate "
        "a token, create a new one, then delete the old one.",
        s.CalendarTokenCreatedSerializer,
        400,
        409,
        request=s.CalendarTokenCreateSerializer,
        code=201,
    ),
    retrieve=operation(
        "liveclass_calendar_tokens_retrieve",
        "Get a calendar feed token",
        "One of the user's active feed tokens (without its secret).",
        s.CalendarTokenSerializer,
        404,
    ),
    destroy=operation(
        "liveclass_calendar_tokens_revoke",
        "Revoke a calendar feed token",
        "The feed stops answering for this token at once.",
        None,
        404,
        code=204,
    ),
)
@extend_schema(tags=["calendar"])
class CalendarTokenViewSet(
    mixins.ListModelMixin, mixins.DestroyModelMixin, mixins.RetrieveModelMixin, LiveClassViewSet
):
    """The user's own feed tokens. Creating one answers its secret and feed address once;
    deleting one revokes it (rotate: create a new one, then delete the old one)."""

    http_method_names = ["get", "post", "delete", "head", "options"]
    serializer_class = s.CalendarTokenSerializer

    def get_queryset(self) -> Any:
        if self.schema_only:
            return CalendarFeedToken.objects.none()
        return active_tokens(self.request.user).order_by("-created_at", "-pk")

    def get_serializer_class(self) -> Any:
        if self.action == "create":
            return s.CalendarTokenCreateSerializer
        return self.serializer_class

    def create(self, request: Request) -> Response:
        body = s.CalendarTokenCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        token, secret = create_token(request.user, **body.validated_data)
        token.secret = secret  # type: ignore[attr-defined]
        data = s.CalendarTokenCreatedSerializer(token, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: Any) -> None:
        revoke_token(instance)


class FeedRateThrottle(WriteRateThrottle):
    """The feed's throttle (scope ``feed``), counted per token: calendar services fetch many
    users' feeds from a few addresses, so an address would be the wrong thing to count."""

    def get_cache_key(self, request: Any, view: Any) -> str:
        ident = hash_secret(str(view.kwargs.get("token", "")))[:32]
        return self.cache_format % {"scope": self.scope, "ident": ident}


class CalendarFeedView(APIView):
    """``calendar/feed/{token}.ics``: the calendar of the token's owner, with no login."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    content_negotiation_class = AnyAccept
    throttle_classes: list[Any] = [*api_settings.DEFAULT_THROTTLE_CLASSES, FeedRateThrottle]
    throttle_scopes = {"feed": "feed"}
    action = "feed"

    def get_exception_handler(self) -> Any:
        return exception_handler

    @calendar_schema(
        "liveclass_calendar_feed",
        "Subscribe to a user's calendar",
        "The token owner's calendar: their bookings as a student and what they teach, within "
        "the configured window; recently cancelled entries as STATUS:CANCELLED. Answers "
        "If-None-Match with 304. An unknown or revoked token is a 404.",
        404,
        429,
        revalidates=True,
        public=True,
        tags=["calendar"],
    )
    def get(self, request: Request, token: str) -> HttpResponse:
        now = timezone.now()
        owner = feed_owner(token, now)
        if owner is None:
            raise NotFound()
        with in_language_of(owner):
            feed = user_feed(owner, now)
            known = feed.known_etag()
            response = get_conditional_response(request, etag=known) if known else None
            etag = known or ""
            if response is None:
                body, etag = feed.render()
                response = get_conditional_response(request, etag=etag)
        if response is None:
            response = calendar_response(body, "calendar.ics")
            response["Content-Disposition"] = 'inline; filename="calendar.ics"'
        response["ETag"] = etag
        response["Cache-Control"] = "private, no-cache"
        if feed.last_modified is not None:
            response["Last-Modified"] = http_date(feed.last_modified.timestamp())
        return response
