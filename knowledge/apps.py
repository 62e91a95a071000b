from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "knowledge"
    verbose_name = "Knowledge bases"

    def ready(self):
        # Publishing, restoring and new drafts copy a version's knowledge, and the diff shows it, through the
        # hooks agents offers (agents never imports knowledge: docs/knowledge.md).
        from agents import hooks
        from knowledge import selectors, services

        hooks.version_copy_hooks.register(services.version_knowledge_copy)
        hooks.version_diff_hooks.register(selectors.version_knowledge_diff)
