from django.apps import AppConfig


class LmsConfig(AppConfig):
    name = "lms"
    verbose_name = "Example LMS"
    default_auto_field = "django.db.models.BigAutoField"
