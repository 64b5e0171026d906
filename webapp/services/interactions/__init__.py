"""A and C2: the life of a conversation, from the customer's first message to its close.

One module per concern; the calls views and jobs make are re-exported here (`interactions.close(...)`):
- `inbound`: a customer's message arrives (`receive_inbound`);
- `lifecycle`: the agent opens, takes, closes, transfers; the softphone; the rule closing long waits;
- `messages`: what we write to the customer (agent, supervisor, bot) and `announce`;
- `delivery`: a queued message's send (the steps of the send job) and its delivery receipts;
- `customers`: numbers and DIDs, STOP and do-not-contact, the customer lock, earlier conversations;
- `errors`: `InteractionError` (a translated refusal; in a job raised inside `i18n.translating()`).
Every function adds to `db.session` and lets the caller (view or job) commit; live
events and jobs (sends, routing) go out only after that commit (`webapp.after_commit`).

Decisions the manual leaves open, stated once here:
- A message to a *disabled* campaign is kept only when the customer already has an
  open interaction there (the agent may finish the conversation); otherwise it is
  dropped with a log line and nothing is stored.
- A STOP keyword (app.config["STOP_KEYWORDS"], the whole message, case and accents
  ignored) puts the number on the campaign's do-not-contact list; the bot confirms
  once (only when the number was not already listed). With an open interaction the
  message joins it (the agent sees it); otherwise it is stored in a new interaction
  closed at once with disposition "opt-out", so it is in the transcripts but never
  routed.
- Outside the campaign's schedule the bot sends the out-of-hours message once per
  interaction; the interaction is still queued and routed (an agent who is signed
  in may answer).
- Opening an interaction marks it read (unread = 0) and leaves it ASSIGNED; the
  agent's (or a supervisor's) first reply makes it ACTIVE and sets first_reply_at.
- The abandon threshold never closes a conversation: past it a waiting customer counts as
  abandoned in the statistics (S1) and stays in the queue, highlighted on the monitor, until
  an agent answers or a person closes it. Only the campaign's optional rule
  (`auto_close_hours`, off by default) closes long waits, with a message to the customer.
- Manual transfers to an agent check eligibility (member, signed in, not in break,
  in a voice campaign) but not the routing capacity: a person decided.
"""
from .customers import add_do_not_contact, earlier_interactions, normalise_number
from .delivery import MESSAGE_REF_OFFSET, apply_status
from .errors import InteractionError
from .inbound import receive_inbound
from .lifecycle import (
    AUTO_CLOSED,
    close,
    close_long_waiting,
    open_for_agent,
    start_outbound,
    take_offer,
    transfer_to_agent,
    transfer_to_campaign,
)
from .messages import (
    send_agent_message,
    send_bot_message,
    send_supervisor_message,
    send_template,
    sender_names,
    whatsapp_window_open,
    window_closes_at,
)

__all__ = [
    "AUTO_CLOSED", "MESSAGE_REF_OFFSET", "InteractionError", "add_do_not_contact", "apply_status",
    "close", "close_long_waiting", "earlier_interactions", "normalise_number", "open_for_agent", "receive_inbound",
    "send_agent_message", "send_bot_message", "send_supervisor_message", "send_template", "sender_names",
    "start_outbound", "take_offer", "transfer_to_agent",
    "transfer_to_campaign", "whatsapp_window_open", "window_closes_at",
]
