from django.contrib.contenttypes import views as contenttype_views
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import NoReverseMatch


def view_on_site(request: HttpRequest, content_type_id: int, object_id: str) -> HttpResponse:
    """The admin's "view on site" redirect, except that an object whose page this site does
    not serve is a 404: DOT's Application links to DOT's management pages, which the URLs
    leave out, and Django's shortcut let the failed reverse become a 500."""
    try:
        return contenttype_views.shortcut(request, content_type_id, object_id)
    except NoReverseMatch as error:
        raise Http404("This object has no page on this site.") from error
