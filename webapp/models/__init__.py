"""The data model, one module per aggregate."""
from .audit import AuditEntry
from .base import utcnow
from .campaigns import (
    DISTRIBUTIONS,
    MODES,
    RINGALL_MODES,
    STRATEGIES,
    Campaign,
    CannedResponse,
    Membership,
    ScheduleEntry,
    split_strategy,
)
from .dialers import (
    Dialer,
    DoNotContact,
    LoadState,
    SpoolMessage,
    SpoolState,
    SpoolUpload,
    StagedUpload,
    StagedUploadChunk,
)
from .interactions import AgentChatMessage, Interaction, InteractionStatus, Message, SenderKind
from .media import Attachment, AttachmentKind, AttachmentState, WhatsAppTemplate
from .providers import Provider
from .reports import (
    AgentBucket,
    AgentDispositionBucket,
    AgentStateBucket,
    AgentStateSpan,
    CampaignBucket,
    DialerBucket,
    DialerFailureBucket,
    DispositionBucket,
)
from .users import (
    SUPERVISING_ROLES,
    AgentState,
    BreakType,
    Role,
    SecurityGroup,
    User,
    UserSession,
    VoiceCampaign,
)
from .users import user_security_groups as user_security_groups_table
from .users import voice_campaign_members as voice_campaign_members_table

__all__ = [
    "AgentBucket", "AgentChatMessage", "AgentDispositionBucket", "AgentState", "AgentStateBucket", "AgentStateSpan",
    "CampaignBucket", "DialerBucket", "DialerFailureBucket", "DispositionBucket", "Attachment", "AttachmentKind", "AttachmentState", "AuditEntry", "BreakType",
    "Campaign", "CannedResponse",
    "DISTRIBUTIONS", "Dialer", "DoNotContact", "Interaction", "InteractionStatus", "LoadState", "MODES", "Membership",
    "Message", "Provider", "RINGALL_MODES", "Role", "STRATEGIES", "SUPERVISING_ROLES", "ScheduleEntry", "SecurityGroup",
    "SenderKind", "SpoolMessage", "SpoolState", "SpoolUpload", "StagedUpload", "StagedUploadChunk", "User",
    "UserSession", "VoiceCampaign", "WhatsAppTemplate", "split_strategy", "utcnow", "user_security_groups_table",
    "voice_campaign_members_table",
]
