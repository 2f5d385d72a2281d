from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LiveClassBookingConfig(AppConfig):
    name = "liveclass_booking"
    label = "liveclass_booking"
    verbose_name = _("Live-class booking")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the system checks on import.
        from . import checks  # noqa: F401
