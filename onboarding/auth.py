"""Sign in with e-mail address (or username) and password."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db.models import Q


class EmailBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None or password is None:
            return None
        User = get_user_model()
        user = (
            User.objects.filter(Q(email__iexact=username) | Q(username__iexact=username))
            .order_by("id")
            .first()
        )
        if user is None:
            User().set_password(password)  # same work either way: no timing hint that the account exists
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
