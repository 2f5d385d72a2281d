from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from .models import Course, Enrollment, User


@admin.register(User)
class LmsUserAdmin(UserAdmin):
    fieldsets = (*UserAdmin.fieldsets, ("LMS", {"fields": ("timezone", "is_teacher")}))
    list_display = ("username", "email", "is_teacher", "timezone", "is_staff")
    list_filter = ("is_teacher", "is_staff", "timezone")


class EnrollmentInline(admin.TabularInline):
    model = Enrollment
    extra = 0
    raw_id_fields = ("student",)


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ("code", "title")
    search_fields = ("code", "title")
    filter_horizontal = ("teachers",)
    inlines = [EnrollmentInline]


@admin.register(Enrollment)
class EnrollmentAdmin(admin.ModelAdmin):
    list_display = ("student", "course", "enrolled_at")
    list_filter = ("course",)
    raw_id_fields = ("student",)
