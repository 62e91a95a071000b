"""Reads of the campaigns pages: a fixed number of queries per page."""
from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncHour

from campaigns.models import Campaign, CampaignAttempt, CampaignContact, Contact, ContactList

STATES = [s for s, _ in CampaignContact.State.choices]


def contact_lists(*, workspace):
    return ContactList.objects.filter(workspace=workspace).annotate(size=Count("contacts"))


def contacts_search(*, contact_list: ContactList, q: str = ""):
    contacts = Contact.objects.filter(contact_list=contact_list)
    q = (q or "").strip()
    if q:
        contacts = contacts.filter(Q(name__icontains=q) | Q(phone_number__icontains=q.replace(" ", ""))
                                   | Q(fields__icontains=q))
    return contacts


def campaigns_of(*, workspace):
    return Campaign.objects.filter(workspace=workspace).select_related("contact_list", "agent")


def state_counts(*, campaign: Campaign) -> dict[str, int]:
    """{state: contacts} with every state present (one query)."""
    counts = dict.fromkeys(STATES, 0)
    for state, n in CampaignContact.objects.filter(campaign=campaign).values_list("state").annotate(n=Count("pk")) \
            .order_by():
        counts[state] = n
    return counts


def attempts_over_time(*, campaign: Campaign, hours: int = 24, now: datetime) -> tuple[list[str], dict[str, list]]:
    """Attempts ended per hour and outcome over the last `hours` hours (one query)."""
    since = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    labels = [(since + timedelta(hours=i)) for i in range(hours)]
    rows = (CampaignAttempt.objects.filter(campaign_contact__campaign=campaign, ended_at__gte=since)
            .annotate(hour=TruncHour("ended_at")).values_list("hour", "outcome").annotate(n=Count("pk")).order_by())
    series: dict[str, list] = {}
    index = {label: i for i, label in enumerate(labels)}
    for hour, outcome, n in rows:
        values = series.setdefault(outcome or "in progress", [0] * hours)
        if hour in index:
            values[index[hour]] += n
    return [label.strftime("%H:00") for label in labels], series


def campaign_contacts(*, campaign: Campaign, state: str = "", limit: int = 200):
    rows = CampaignContact.objects.filter(campaign=campaign).select_related("contact")
    if state:
        rows = rows.filter(state=state)
    return rows.order_by("pk")[:limit]


def attempts_by_contact(*, campaign_contact_ids: list[int]) -> dict[int, list[CampaignAttempt]]:
    grouped: dict[int, list[CampaignAttempt]] = {}
    for attempt in (CampaignAttempt.objects.filter(campaign_contact_id__in=campaign_contact_ids)
                    .select_related("rep").order_by("number")):
        grouped.setdefault(attempt.campaign_contact_id, []).append(attempt)
    return grouped


def export_rows(*, campaign: Campaign):
    """One row per attempt (contacts never called get one row without an attempt), with the call's analysis."""
    from calls.models import CallAnalysis

    contacts = CampaignContact.objects.filter(campaign=campaign).select_related("contact").order_by("pk")
    attempts: dict[int, list[CampaignAttempt]] = {}
    for attempt in CampaignAttempt.objects.filter(campaign_contact__campaign=campaign).select_related("rep").order_by(
            "number"):
        attempts.setdefault(attempt.campaign_contact_id, []).append(attempt)
    session_ids = [a.call_session_id for group in attempts.values() for a in group if a.call_session_id]
    analyses = {a.call_session_id: a for a in CallAnalysis.objects.filter(call_session_id__in=session_ids)}
    for cc in contacts.iterator(chunk_size=2000):
        for attempt in attempts.get(cc.pk, [None]):
            analysis = analyses.get(attempt.call_session_id) if attempt else None
            yield cc, attempt, analysis


def rep_results(*, campaign: Campaign) -> list[dict]:
    """Worked by reps: per rep, attempts closed and in progress and their dispositions (one query)."""
    reps: dict[str, dict] = {}
    rows = (CampaignAttempt.objects.filter(campaign_contact__campaign=campaign, rep__isnull=False)
            .annotate(open=Q(ended_at__isnull=True)).values_list("rep__username", "disposition", "open")
            .annotate(n=Count("pk")).order_by())
    for username, disposition, open_, n in rows:
        entry = reps.setdefault(username, {"rep": username, "attempts": 0, "open": 0, "dispositions": {}})
        entry["attempts"] += n
        if open_:
            entry["open"] += n
        elif disposition:
            entry["dispositions"][disposition] = entry["dispositions"].get(disposition, 0) + n
    return [dict(r, dispositions=sorted(r["dispositions"].items())) for _, r in sorted(reps.items())]
