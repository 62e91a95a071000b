"""The public API's shapes: the call as it is read, and the request that places one."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from calls.models import CallSession


class CallCreateSerializer(serializers.Serializer):
    agent = serializers.IntegerField(min_value=1, help_text="The agent's id (Studio → Agents).")
    environment = serializers.IntegerField(min_value=1, help_text="The environment's id.")
    to = serializers.CharField(max_length=32, help_text="The number to call, E.164 (+15125550123).")
    from_ = serializers.CharField(max_length=32, required=False, allow_blank=True,
                                  help_text="Caller ID: one of the workspace's numbers or verified caller IDs; "
                                            "empty: the default caller ID.")
    version_mode = serializers.ChoiceField(choices=["published", "draft", "pinned"], default="published")
    version = serializers.IntegerField(min_value=1, required=False,
                                       help_text="With version_mode=pinned: the published version's number.")
    variables = serializers.DictField(child=serializers.CharField(allow_blank=True, max_length=500), required=False,
                                      help_text="This call's variables, e.g. {\"first_name\": \"Jane\"}: used as "
                                                "{first_name} in the instructions, greeting and voicemail.")
    metadata = serializers.DictField(required=False, help_text="Yours, returned as given.")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")  # "from" is a Python keyword
        return fields


class TurnSerializer(serializers.Serializer):
    role = serializers.CharField()
    text = serializers.CharField()
    heard = serializers.BooleanField()
    started_at = serializers.DateTimeField(allow_null=True)


class AnalysisSerializer(serializers.Serializer):
    status = serializers.CharField()
    summary = serializers.CharField()
    fields = serializers.DictField()
    success = serializers.BooleanField(allow_null=True)


class CallSerializer(serializers.ModelSerializer):
    to = serializers.CharField(source="to_number")
    from_ = serializers.CharField(source="from_number")
    agent = serializers.SerializerMethodField()
    agent_version = serializers.SerializerMethodField()
    answered_by = serializers.CharField(allow_blank=True, help_text="Twilio's AnsweredBy: human, "
                                        "machine_end_beep, machine_end_silence, machine_end_other, fax, unknown.")
    duration_seconds = serializers.IntegerField(allow_null=True, read_only=True)

    class Meta:
        model = CallSession
        fields = ["id", "call_sid", "direction", "status", "outcome", "answered_by", "to", "from_", "agent",
                  "agent_version", "environment", "variables", "metadata", "started_at", "ended_at",
                  "duration_seconds"]

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields

    def get_agent(self, obj) -> int | None:
        return obj.agent_version.agent_id if obj.agent_version_id else None

    def get_agent_version(self, obj) -> str | None:
        return obj.agent_version.label if obj.agent_version_id else None


class CallDetailSerializer(CallSerializer):
    transcript = serializers.SerializerMethodField()
    analysis = serializers.SerializerMethodField()

    class Meta(CallSerializer.Meta):
        fields = [*CallSerializer.Meta.fields, "transcript", "analysis"]

    @extend_schema_field(TurnSerializer(many=True))
    def get_transcript(self, obj) -> list[TurnSerializer]:
        return TurnSerializer(obj.turns.all(), many=True).data

    @extend_schema_field(AnalysisSerializer(allow_null=True))
    def get_analysis(self, obj) -> AnalysisSerializer | None:
        from calls.models import CallAnalysis

        try:
            analysis = obj.analysis
        except CallAnalysis.DoesNotExist:
            analysis = None
        return AnalysisSerializer(analysis).data if analysis is not None else None


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField(required=False)
    code = serializers.CharField(required=False)
    errors = serializers.DictField(required=False)
