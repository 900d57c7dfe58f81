"""/api/v1/auth/tokens/: a signed-in user lists and revokes their own API tokens (by session or
token) and makes new ones from an interactive session only (docs/decisions.md: a token cannot
mint tokens, so its expiry ends a stolen one). Keys are shown once, in the answer that makes
them, marked `Cache-Control: no-store`; lists never hold them."""

from django.utils.cache import add_never_cache_headers
from django_otp import user_has_device
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response

from config.http.api import StrictCursorPagination
from config.http.openapi import problems
from nodes.api.serializers import StrictCharField, StrictInputSerializer
from tokens.models import ApiToken
from tokens.selectors import tokens_of
from tokens.services import token_create, token_revoke, tokens_revoke_all


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at"]
        read_only_fields = fields


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The key. Shown only in this answer: keep it now.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class ApiTokenCreateSerializer(StrictInputSerializer):
    name = StrictCharField(
        required=False, allow_blank=True, default="", max_length=ApiToken._meta.get_field("name").max_length
    )


class InteractiveSession(BasePermission):
    """Making a token needs a person: a session opened at the login (with the one-time code of
    the user's authenticator when they enrolled one), never a token — or a stolen token could
    mint itself successors and outlive its expiry. Operators mint with `manage.py api_token`."""

    message = (
        "API tokens are made from a signed-in session (the admin login, with your authentication code "
        "if you enrolled an authenticator), not with a token; an operator can mint one with "
        "`manage.py api_token`."
    )

    def has_permission(self, request, view):
        if not isinstance(request.successful_authenticator, SessionAuthentication):
            return False
        user = request.user
        return not user_has_device(user, confirmed=True) or user.is_verified()


class NewestFirst(StrictCursorPagination):
    ordering = ("-created_at",)


@extend_schema_view(
    list=extend_schema(
        summary="List your API tokens (without their keys)",
        responses={200: ApiTokenSerializer(many=True), **problems(400, 401, 503)},
    ),
)
class ApiTokenViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The signed-in user's own tokens; another user's token answers 404 as if it did not exist."""

    permission_classes = [IsAuthenticated]
    serializer_class = ApiTokenSerializer
    pagination_class = NewestFirst
    lookup_value_converter = "uuid"
    queryset = ApiToken.objects.none()  # the schema's model; requests see get_queryset()

    def get_queryset(self):
        return tokens_of(user=self.request.user)

    def get_permissions(self):
        if self.action == "create":
            return [IsAuthenticated(), InteractiveSession()]
        return super().get_permissions()

    @extend_schema(
        summary="Make an API token (its key is shown once, in this answer)",
        request=ApiTokenCreateSerializer,
        responses={201: ApiTokenCreatedSerializer, **problems(400, 401, 403, 413, 415, 503)},
        description=(
            "Only from a signed-in session (the admin login, with its authentication code when enrolled): "
            "a token cannot make tokens."
        ),
    )
    def create(self, request):
        serializer = ApiTokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, key = token_create(user=request.user, name=serializer.validated_data["name"])
        token.token = key
        response = Response(ApiTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)
        add_never_cache_headers(response)  # the key: no cache, proxy or browser history may keep it
        return response

    @extend_schema(
        summary="Revoke one of your API tokens",
        request=None,
        responses={204: OpenApiResponse(description="Revoked"), **problems(401, 404, 503)},
    )
    def destroy(self, request, pk):
        token_revoke(user=request.user, token_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Revoke all your API tokens (the one this request uses included)",
        request=None,
        responses={
            200: inline_serializer("TokensRevoked", fields={"revoked": serializers.IntegerField()}),
            **problems(401, 503),
        },
    )
    @action(detail=False, methods=["post"], url_path="revoke-all")
    def revoke_all(self, request):
        return Response({"revoked": tokens_revoke_all(user=request.user)})
