"""drf-spectacular: the user token authentication as two security schemes, so generated
clients and Swagger's Authorize dialog send `Token <key>` or `Bearer <key>` as they prefer."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class UserTokenScheme(OpenApiAuthenticationExtension):
    target_class = "tokens.authentication.UserTokenAuthentication"
    name = ["bearerAuth", "tokenAuth"]

    def get_security_requirement(self, auto_schema):
        return [{"bearerAuth": []}, {"tokenAuth": []}]  # either one

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "description": "A user API token: `Authorization: Bearer <key>`.",
            },
            {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "A user API token, scheme included: `Authorization: Token <key>`.",
            },
        ]
