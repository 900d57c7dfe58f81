"""/api/v1/auth/tokens/: a signed-in user lists, makes and revokes their own API tokens (by
session or token). Keys are shown once, in the answer that makes them; lists never hold them."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
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

    @extend_schema(
        summary="Make an API token (its key is shown once, in this answer)",
        request=ApiTokenCreateSerializer,
        responses={201: ApiTokenCreatedSerializer, **problems(400, 401, 413, 415, 503)},
    )
    def create(self, request):
        serializer = ApiTokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, key = token_create(user=request.user, name=serializer.validated_data["name"])
        token.token = key
        return Response(ApiTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)

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
