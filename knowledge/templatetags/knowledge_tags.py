"""Template tags other apps' pages use to show knowledge without importing knowledge in Python
(agents' version page: `{% load knowledge_tags %}{% version_knowledge version %}`)."""
from django import template

from knowledge import selectors

register = template.Library()


@register.inclusion_tag("knowledge/_version_knowledge.html")
def version_knowledge(version):
    """The knowledge bases `version` answers from: a draft's live ones, a published version's snapshots (one
    query)."""
    return {"version": version, "links": selectors.version_knowledge_list(version=version)}
