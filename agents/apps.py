from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"

    def ready(self):
        from agents import hooks, voicemail

        # The voicemail recording is a row per version: copied and compared with the version's content.
        hooks.version_copy_hooks.register(voicemail.version_recording_copy)
        hooks.version_diff_hooks.register(voicemail.version_recording_diff)
