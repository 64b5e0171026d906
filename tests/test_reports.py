"""Issue 15: each report figure against figures worked out by hand, on a day that crosses midnight in
the centre's time zone (America/Montevideo, UTC-3) and on the days of a DST change (Europe/Madrid)."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

NOW = datetime(2026, 3, 11, 4, 0, 0)  # UTC; 01:00 of 11 March in Montevideo


def at(text):
    return datetime.fromisoformat(text)


@pytest.fixture
def scene(app, make, db, monkeypatch):
    """The scenario: six conversations, one agent's states and messages, three dialer messages."""
    from webapp.models import AgentStateSpan, BreakType, Interaction, Message, SpoolMessage
    from webapp.services import report_rollups

    monkeypatch.setitem(app.config, "CENTER_TIMEZONE", "America/Montevideo")
    g = make.group()
    camp = make.campaign(g, name="Ventas", sl_threshold_seconds=60, abandon_threshold_seconds=300,
                         chat_time_threshold_seconds=1200)
    ana = make.user("ana", groups=[g])
    lunch = BreakType(name="Almuerzo")
    dialer = make.dialer(g)
    db.session.add(lunch)
    db.session.commit()

    def conv(created, **kw):
        item = Interaction(campaign_id=camp.id, customer_number="+59899000000", created_at=at(created),
                           queued_at=at(created), **kw)
        db.session.add(item)
        db.session.flush()
        return item

    # 1: 23:50 local on the 10th (02:50 UTC on the 11th); first reply after 40 s; closed 10 min later,
    #    00:01:40 local on the 11th.
    one = conv("2026-03-11 02:50:00", status="closed", agent_id=ana.id, first_reply_at=at("2026-03-11 02:50:40"),
               closed_at=at("2026-03-11 03:00:40"), disposition="venta")
    # 2: 00:10 local on the 11th; abandoned after 400 s without a reply.
    conv("2026-03-11 03:10:00", status="abandoned", closed_at=at("2026-03-11 03:16:40"))
    # 3: 09:00 local; reply after 90 s; closed 30 min later (a long chat); transferred once.
    three = conv("2026-03-10 12:00:00", status="closed", agent_id=ana.id, first_reply_at=at("2026-03-10 12:01:30"),
                 closed_at=at("2026-03-10 12:31:30"), disposition="reclamo", transfers=1)
    # 4: 10:00 local, still waiting at NOW (15 h): abandoned by the threshold.
    conv("2026-03-10 13:00:00", status="waiting")
    # 5: the agent's outbound at 11:00 local: not offered; handled 300 s.
    five = conv("2026-03-10 14:00:00", direction="outbound", status="closed", agent_id=ana.id,
                first_reply_at=at("2026-03-10 14:00:00"), closed_at=at("2026-03-10 14:05:00"), disposition="venta")
    # 6: out of hours, closed by the agent without a reply.
    conv("2026-03-10 14:30:00", status="closed", agent_id=ana.id, out_of_hours_sent=True,
         closed_at=at("2026-03-10 14:40:00"), disposition="spam")
    for item in (one, three, five):
        db.session.add(Message(interaction_id=item.id, sender_kind="agent", sender_user_id=ana.id, body="hola",
                               created_at=item.first_reply_at))
    for state, start, end, extra in (
            ("free", "2026-03-10 11:00:00", "2026-03-10 12:00:00", {}),
            ("busy", "2026-03-10 12:00:00", "2026-03-10 12:31:30", {"on_call": True}),
            ("free_break", "2026-03-10 12:31:30", "2026-03-10 13:31:30", {"break_type_id": lunch.id}),
            ("busy_break", "2026-03-10 13:31:30", "2026-03-10 13:41:30", {"break_type_id": lunch.id}),
            ("disconnected", "2026-03-10 13:41:30", "2026-03-11 02:30:00", {}),
            ("free", "2026-03-11 02:30:00", "2026-03-11 03:30:00", {})):
        db.session.add(AgentStateSpan(agent_id=ana.id, state=state, cause="agent", started_at=at(start),
                                      ended_at=at(end), **extra))
    db.session.add_all([
        SpoolMessage(dialer_id=dialer.id, destination="+59899000001", body="x", state=7,
                     created_at=at("2026-03-11 02:30:00"), sent_at=at("2026-03-11 02:31:00"),
                     delivered_at=at("2026-03-11 03:05:00"), read_at=at("2026-03-11 03:10:00"),
                     replied_at=at("2026-03-11 03:20:00")),
        SpoolMessage(dialer_id=dialer.id, destination="+59899000002", body="x", state=5, last_error="30003 unreachable",
                     created_at=at("2026-03-10 12:00:00"), sent_at=at("2026-03-10 12:00:05")),
        SpoolMessage(dialer_id=dialer.id, destination="+59899000003", body="x", state=3,
                     created_at=at("2026-03-10 12:00:00"))])
    db.session.commit()
    report_rollups.rebuild(NOW)
    db.session.commit()
    return {"campaign": camp, "agent": ana, "lunch": lunch, "dialer": dialer}


def by_label(report):
    return {period.start.date(): figures for period, figures in report.rows}


def test_campaign_figures_by_centre_day(scene):
    from webapp.services import reports

    report = reports.campaign_report([scene["campaign"].id], reports.make_span(date(2026, 3, 10),
                                                                               date(2026, 3, 11), "day"))
    tenth, eleventh = by_label(report)[date(2026, 3, 10)], by_label(report)[date(2026, 3, 11)]
    assert (tenth.offered, tenth.answered, tenth.answered_in_sl, tenth.abandoned) == (4, 2, 1, 1)
    assert tenth.service_level == pytest.approx(100 / 3)
    assert tenth.avg_wait == pytest.approx((40 + 90 + 54000) / 3, abs=0.01)
    assert tenth.max_wait == pytest.approx(54000, abs=0.01)
    assert tenth.waits == [0, 1, 1, 0, 0, 1]
    assert tenth.avg_first_response == pytest.approx(65, abs=0.01)
    assert tenth.avg_handle == pytest.approx((600 + 1800 + 300) / 3, abs=0.01)
    assert (tenth.transferred, tenth.out_of_hours, tenth.long_chats) == (1, 1, 1)
    # closed by close time: conversation 1 closed after midnight, on the 11th
    assert (tenth.closed, tenth.dispositions) == (3, {"reclamo": 1, "venta": 1, "spam": 1})
    assert (eleventh.closed, eleventh.dispositions) == (1, {"venta": 1})
    assert (eleventh.offered, eleventh.answered, eleventh.abandoned, eleventh.service_level) == (1, 0, 1, 0.0)
    assert eleventh.avg_wait == pytest.approx(400, abs=0.01) and eleventh.waits == [0, 0, 0, 0, 1, 0]
    assert report.total.offered == 5 and report.total.closed == 4
    hours = {p.start.hour: f for p, f in reports.campaign_report(
        [scene["campaign"].id], reports.make_span(date(2026, 3, 10), date(2026, 3, 10), "hour")).rows}
    assert hours[23].offered == 1 and hours[23].answered_in_sl == 1 and hours[9].long_chats == 1


def test_agent_figures_by_centre_day(scene):
    from webapp.services import reports

    report = reports.agent_report([scene["agent"].id], reports.make_span(date(2026, 3, 10), date(2026, 3, 11),
                                                                         "day"))
    rows = {p.start.date(): f for (p, _agent), f in report.rows}
    tenth, eleventh = rows[date(2026, 3, 10)], rows[date(2026, 3, 11)]
    assert (tenth.handled, tenth.messages_sent) == (3, 3)
    assert tenth.avg_first_response == pytest.approx(45, abs=0.01)  # conversations 3 (90 s) and 5 (0 s)
    assert tenth.avg_handle == pytest.approx(1050, abs=0.01)
    assert tenth.dispositions == {"reclamo": 1, "venta": 1, "spam": 1}
    assert tenth.free == pytest.approx(3600 + 1800) and tenth.busy == pytest.approx(1890)
    assert tenth.breaks == {scene["lunch"].id: pytest.approx(4200)} and tenth.on_call == pytest.approx(1890)
    assert tenth.connected == pytest.approx(11490)
    assert tenth.occupancy == pytest.approx(100 * (1890 + 600) / 11490)
    assert (eleventh.handled, eleventh.messages_sent, eleventh.dispositions) == (1, 0, {"venta": 1})
    assert eleventh.free == pytest.approx(1800) and eleventh.occupancy == 0.0
    assert eleventh.avg_first_response == pytest.approx(40, abs=0.01)


def test_dialer_figures_by_centre_day(scene):
    from webapp.services import reports

    report = reports.dialer_report([scene["dialer"].id], reports.make_span(date(2026, 3, 10), date(2026, 3, 11),
                                                                           "day"))
    rows = {p.start.date(): f for (p, _d), f in report.rows}
    tenth, eleventh = rows[date(2026, 3, 10)], rows[date(2026, 3, 11)]
    assert (tenth.loaded, tenth.sent, tenth.delivered, tenth.failed, tenth.blocked) == (3, 2, 0, 1, 1)
    assert (eleventh.loaded, eleventh.sent, eleventh.delivered) == (0, 0, 1)
    assert (tenth.read, tenth.replied, eleventh.read, eleventh.replied) == (0, 0, 1, 1)
    assert (report.total.read, report.total.replied) == (1, 1)
    assert report.extra["failures"] == {"30003 unreachable": 1}


@pytest.mark.parametrize(("day", "hours", "repeated"), [(date(2026, 3, 29), 23, 0), (date(2026, 10, 25), 25, 1)])
def test_a_dst_day_has_its_own_number_of_hours(app, make, db, monkeypatch, day, hours, repeated):
    """One conversation every UTC hour around the change: the centre's day holds 23 or 25 of them."""
    from webapp.models import Interaction
    from webapp.services import report_rollups, reports

    monkeypatch.setitem(app.config, "CENTER_TIMEZONE", "Europe/Madrid")
    camp = make.campaign(make.group())
    start = datetime(day.year, day.month, day.day) - timedelta(hours=6)
    for n in range(36):
        db.session.add(Interaction(campaign_id=camp.id, customer_number="+34600000000", status="abandoned",
                                   created_at=start + timedelta(hours=n, minutes=20),
                                   closed_at=start + timedelta(hours=n, minutes=30)))
    db.session.commit()
    report_rollups.rebuild(start + timedelta(days=2))
    db.session.commit()
    span = reports.make_span(day, day, "day")
    assert [f.offered for _p, f in reports.campaign_report([camp.id], span).rows] == [hours]
    by_hour = reports.campaign_report([camp.id], reports.make_span(day, day, "hour")).rows
    assert len(by_hour) == hours and all(f.offered == 1 for _p, f in by_hour)
    assert sum(p.repeated for p, _f in by_hour) == repeated


def test_bad_ranges_are_refused():
    from webapp.services import reports

    with pytest.raises(reports.ReportError):
        reports.make_span(date(2026, 3, 2), date(2026, 3, 1), "day")
    with pytest.raises(reports.ReportError):
        reports.make_span(date(2026, 3, 1), date(2026, 3, 2), "year")
