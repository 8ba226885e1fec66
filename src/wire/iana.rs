//! IANA code points used on the wire: message types, capability codes,
//! path attribute type codes, address families and error codes.

/// BGP message types (RFC 4271 §4.1, RFC 2918).
pub mod msg {
    pub const OPEN: u8 = 1;
    pub const UPDATE: u8 = 2;
    pub const NOTIFICATION: u8 = 3;
    pub const KEEPALIVE: u8 = 4;
    pub const ROUTE_REFRESH: u8 = 5;
}

/// Capability codes (RFC 5492 registry).
pub mod cap {
    pub const MULTIPROTOCOL: u8 = 1;
    pub const ROUTE_REFRESH: u8 = 2;
    pub const EXTENDED_NEXT_HOP: u8 = 5;
    pub const EXTENDED_MESSAGE: u8 = 6;
    pub const GRACEFUL_RESTART: u8 = 64;
    pub const FOUR_OCTET_AS: u8 = 65;
    pub const ADD_PATH: u8 = 69;
    pub const ENHANCED_ROUTE_REFRESH: u8 = 70;
    pub const LONG_LIVED_GR: u8 = 71;
    pub const FQDN: u8 = 73;
}

/// Path attribute type codes.
pub mod attr {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MULTI_EXIT_DISC: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const ORIGINATOR_ID: u8 = 9;
    pub const CLUSTER_LIST: u8 = 10;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    pub const EXTENDED_COMMUNITIES: u8 = 16;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const LARGE_COMMUNITY: u8 = 32;

    /// Attribute flag bits (RFC 4271 §4.3).
    pub const FLAG_OPTIONAL: u8 = 0x80;
    pub const FLAG_TRANSITIVE: u8 = 0x40;
    pub const FLAG_PARTIAL: u8 = 0x20;
    pub const FLAG_EXTENDED_LENGTH: u8 = 0x10;

    /// Human name of an attribute type code.
    pub fn name(code: u8) -> &'static str {
        match code {
            ORIGIN => "ORIGIN",
            AS_PATH => "AS_PATH",
            NEXT_HOP => "NEXT_HOP",
            MULTI_EXIT_DISC => "MULTI_EXIT_DISC",
            LOCAL_PREF => "LOCAL_PREF",
            ATOMIC_AGGREGATE => "ATOMIC_AGGREGATE",
            AGGREGATOR => "AGGREGATOR",
            COMMUNITIES => "COMMUNITIES",
            ORIGINATOR_ID => "ORIGINATOR_ID",
            CLUSTER_LIST => "CLUSTER_LIST",
            MP_REACH_NLRI => "MP_REACH_NLRI",
            MP_UNREACH_NLRI => "MP_UNREACH_NLRI",
            EXTENDED_COMMUNITIES => "EXTENDED_COMMUNITIES",
            AS4_PATH => "AS4_PATH",
            AS4_AGGREGATOR => "AS4_AGGREGATOR",
            LARGE_COMMUNITY => "LARGE_COMMUNITY",
            _ => "UNKNOWN",
        }
    }
}

/// Address family identifiers.
pub mod afi {
    pub const IPV4: u16 = 1;
    pub const IPV6: u16 = 2;
}

/// Subsequent address family identifiers.
pub mod safi {
    pub const UNICAST: u8 = 1;
    pub const MULTICAST: u8 = 2;
}

/// The 2-octet placeholder AS for 4-octet AS numbers (RFC 6793 §9).
pub const AS_TRANS: u16 = 23456;

/// NOTIFICATION error codes and subcodes (RFC 4271 §4.5, §6; RFC 4486;
/// RFC 6608; RFC 7313; RFC 8203).
pub mod err {
    pub const MESSAGE_HEADER: u8 = 1;
    pub const OPEN_MESSAGE: u8 = 2;
    pub const UPDATE_MESSAGE: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;
    pub const ROUTE_REFRESH: u8 = 7;

    // Message header errors (RFC 4271 §6.1).
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    pub const BAD_MESSAGE_TYPE: u8 = 3;

    // OPEN message errors (RFC 4271 §6.2, RFC 5492).
    pub const UNSPECIFIC: u8 = 0;
    pub const UNSUPPORTED_VERSION: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;

    // UPDATE message errors (RFC 4271 §6.3).
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = 2;
    pub const MISSING_WELL_KNOWN_ATTRIBUTE: u8 = 3;
    pub const ATTRIBUTE_FLAGS_ERROR: u8 = 4;
    pub const ATTRIBUTE_LENGTH_ERROR: u8 = 5;
    pub const INVALID_ORIGIN_ATTRIBUTE: u8 = 6;
    pub const INVALID_NEXT_HOP_ATTRIBUTE: u8 = 8;
    pub const OPTIONAL_ATTRIBUTE_ERROR: u8 = 9;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;

    // FSM errors (RFC 6608).
    pub const FSM_UNEXPECTED_IN_OPENSENT: u8 = 1;
    pub const FSM_UNEXPECTED_IN_OPENCONFIRM: u8 = 2;
    pub const FSM_UNEXPECTED_IN_ESTABLISHED: u8 = 3;

    // Cease subcodes (RFC 4486, RFC 8203).
    pub const CEASE_MAX_PREFIXES: u8 = 1;
    pub const CEASE_ADMIN_SHUTDOWN: u8 = 2;
    pub const CEASE_PEER_DECONFIGURED: u8 = 3;
    pub const CEASE_ADMIN_RESET: u8 = 4;
    pub const CEASE_CONNECTION_REJECTED: u8 = 5;
    pub const CEASE_OTHER_CONFIG_CHANGE: u8 = 6;
    pub const CEASE_COLLISION_RESOLUTION: u8 = 7;
    pub const CEASE_OUT_OF_RESOURCES: u8 = 8;
    pub const CEASE_HARD_RESET: u8 = 9;

    // ROUTE-REFRESH errors (RFC 7313 §5).
    pub const INVALID_MESSAGE_LENGTH: u8 = 1;

    /// Human name of an error code.
    pub fn code_name(code: u8) -> &'static str {
        match code {
            MESSAGE_HEADER => "Message Header Error",
            OPEN_MESSAGE => "OPEN Message Error",
            UPDATE_MESSAGE => "UPDATE Message Error",
            HOLD_TIMER_EXPIRED => "Hold Timer Expired",
            FSM => "Finite State Machine Error",
            CEASE => "Cease",
            ROUTE_REFRESH => "ROUTE-REFRESH Message Error",
            _ => "Unknown error code",
        }
    }

    /// Human name of a subcode within an error code.
    pub fn subcode_name(code: u8, subcode: u8) -> &'static str {
        match (code, subcode) {
            (_, 0) => "Unspecific",
            (MESSAGE_HEADER, CONNECTION_NOT_SYNCHRONIZED) => "Connection Not Synchronized",
            (MESSAGE_HEADER, BAD_MESSAGE_LENGTH) => "Bad Message Length",
            (MESSAGE_HEADER, BAD_MESSAGE_TYPE) => "Bad Message Type",
            (OPEN_MESSAGE, UNSUPPORTED_VERSION) => "Unsupported Version Number",
            (OPEN_MESSAGE, BAD_PEER_AS) => "Bad Peer AS",
            (OPEN_MESSAGE, BAD_BGP_IDENTIFIER) => "Bad BGP Identifier",
            (OPEN_MESSAGE, UNSUPPORTED_OPTIONAL_PARAMETER) => "Unsupported Optional Parameter",
            (OPEN_MESSAGE, 5) => "Authentication Failure (deprecated)",
            (OPEN_MESSAGE, UNACCEPTABLE_HOLD_TIME) => "Unacceptable Hold Time",
            (OPEN_MESSAGE, UNSUPPORTED_CAPABILITY) => "Unsupported Capability",
            (OPEN_MESSAGE, 11) => "Role Mismatch",
            (UPDATE_MESSAGE, MALFORMED_ATTRIBUTE_LIST) => "Malformed Attribute List",
            (UPDATE_MESSAGE, UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE) => {
                "Unrecognized Well-known Attribute"
            }
            (UPDATE_MESSAGE, MISSING_WELL_KNOWN_ATTRIBUTE) => "Missing Well-known Attribute",
            (UPDATE_MESSAGE, ATTRIBUTE_FLAGS_ERROR) => "Attribute Flags Error",
            (UPDATE_MESSAGE, ATTRIBUTE_LENGTH_ERROR) => "Attribute Length Error",
            (UPDATE_MESSAGE, INVALID_ORIGIN_ATTRIBUTE) => "Invalid ORIGIN Attribute",
            (UPDATE_MESSAGE, 7) => "AS Routing Loop (deprecated)",
            (UPDATE_MESSAGE, INVALID_NEXT_HOP_ATTRIBUTE) => "Invalid NEXT_HOP Attribute",
            (UPDATE_MESSAGE, OPTIONAL_ATTRIBUTE_ERROR) => "Optional Attribute Error",
            (UPDATE_MESSAGE, INVALID_NETWORK_FIELD) => "Invalid Network Field",
            (UPDATE_MESSAGE, MALFORMED_AS_PATH) => "Malformed AS_PATH",
            (FSM, FSM_UNEXPECTED_IN_OPENSENT) => "Receive Unexpected Message in OpenSent State",
            (FSM, FSM_UNEXPECTED_IN_OPENCONFIRM) => {
                "Receive Unexpected Message in OpenConfirm State"
            }
            (FSM, FSM_UNEXPECTED_IN_ESTABLISHED) => {
                "Receive Unexpected Message in Established State"
            }
            (CEASE, CEASE_MAX_PREFIXES) => "Maximum Number of Prefixes Reached",
            (CEASE, CEASE_ADMIN_SHUTDOWN) => "Administrative Shutdown",
            (CEASE, CEASE_PEER_DECONFIGURED) => "Peer De-configured",
            (CEASE, CEASE_ADMIN_RESET) => "Administrative Reset",
            (CEASE, CEASE_CONNECTION_REJECTED) => "Connection Rejected",
            (CEASE, CEASE_OTHER_CONFIG_CHANGE) => "Other Configuration Change",
            (CEASE, CEASE_COLLISION_RESOLUTION) => "Connection Collision Resolution",
            (CEASE, CEASE_OUT_OF_RESOURCES) => "Out of Resources",
            (CEASE, CEASE_HARD_RESET) => "Hard Reset",
            (CEASE, 10) => "BFD Down",
            (ROUTE_REFRESH, INVALID_MESSAGE_LENGTH) => "Invalid Message Length",
            _ => "Unknown subcode",
        }
    }
}
