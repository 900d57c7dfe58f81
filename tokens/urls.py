"""/api/v1/auth/ routes: the signed-in user's API tokens."""

from rest_framework.routers import SimpleRouter

from tokens.api import ApiTokenViewSet

router = SimpleRouter(use_regex_path=False)
router.register("tokens", ApiTokenViewSet, basename="api-token")

urlpatterns = router.urls
