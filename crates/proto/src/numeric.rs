//! IRC numeric replies, named in one place. Each has its code and the default
//! human-readable trailing text; handlers give the parameters before it.

/// A numeric reply: code and default trailing text (empty when the handler
/// supplies every parameter itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Numeric {
    pub code: u16,
    pub text: &'static str,
}

const fn n(code: u16, text: &'static str) -> Numeric {
    Numeric { code, text }
}

pub const RPL_WELCOME: Numeric = n(1, "");
pub const RPL_YOURHOST: Numeric = n(2, "");
pub const RPL_CREATED: Numeric = n(3, "");
pub const RPL_MYINFO: Numeric = n(4, "");
pub const RPL_ISUPPORT: Numeric = n(5, "are supported by this server");
pub const RPL_UMODEIS: Numeric = n(221, "");
pub const RPL_LUSERCLIENT: Numeric = n(251, "");
pub const RPL_LUSEROP: Numeric = n(252, "operator(s) online");
pub const RPL_LUSERUNKNOWN: Numeric = n(253, "unknown connection(s)");
pub const RPL_LUSERCHANNELS: Numeric = n(254, "channels formed");
pub const RPL_LUSERME: Numeric = n(255, "");
pub const RPL_ADMINME: Numeric = n(256, "Administrative info");
pub const RPL_ADMINLOC1: Numeric = n(257, "");
pub const RPL_ADMINLOC2: Numeric = n(258, "");
pub const RPL_ADMINEMAIL: Numeric = n(259, "");
pub const RPL_LOCALUSERS: Numeric = n(265, "");
pub const RPL_GLOBALUSERS: Numeric = n(266, "");
pub const RPL_WHOISCERTFP: Numeric = n(276, "");
pub const RPL_NONE: Numeric = n(300, "");
pub const RPL_AWAY: Numeric = n(301, "");
pub const RPL_USERHOST: Numeric = n(302, "");
pub const RPL_ISON: Numeric = n(303, "");
pub const RPL_UNAWAY: Numeric = n(305, "You are no longer marked as being away");
pub const RPL_NOWAWAY: Numeric = n(306, "You have been marked as being away");
pub const RPL_WHOISBOT: Numeric = n(335, "is a bot");
/// The channels a user is invited to (`INVITE` without parameters).
pub const RPL_INVITELIST: Numeric = n(336, "");
pub const RPL_ENDOFINVITELIST: Numeric = n(337, "End of /INVITE list");
pub const RPL_WHOISUSER: Numeric = n(311, "");
pub const RPL_WHOISSERVER: Numeric = n(312, "");
pub const RPL_WHOISOPERATOR: Numeric = n(313, "is an IRC operator");
pub const RPL_WHOWASUSER: Numeric = n(314, "");
pub const RPL_ENDOFWHO: Numeric = n(315, "End of WHO list");
pub const RPL_WHOISIDLE: Numeric = n(317, "seconds idle, signon time");
pub const RPL_ENDOFWHOIS: Numeric = n(318, "End of /WHOIS list");
pub const RPL_WHOISCHANNELS: Numeric = n(319, "");
pub const RPL_LISTSTART: Numeric = n(321, "Users  Name");
pub const RPL_LIST: Numeric = n(322, "");
pub const RPL_LISTEND: Numeric = n(323, "End of /LIST");
pub const RPL_CHANNELMODEIS: Numeric = n(324, "");
pub const RPL_CREATIONTIME: Numeric = n(329, "");
pub const RPL_WHOISACCOUNT: Numeric = n(330, "is logged in as");
pub const RPL_NOTOPIC: Numeric = n(331, "No topic is set");
pub const RPL_TOPIC: Numeric = n(332, "");
pub const RPL_TOPICWHOTIME: Numeric = n(333, "");
pub const RPL_WHOISACTUALLY: Numeric = n(338, "is actually using host");
pub const RPL_INVITING: Numeric = n(341, "");
/// A channel's invite-exception (`+I`) list; Modern IRC's RPL_INVEXLIST.
pub const RPL_INVEXLIST: Numeric = n(346, "");
pub const RPL_ENDOFINVEXLIST: Numeric = n(347, "End of channel invite list");
pub const RPL_EXCEPTLIST: Numeric = n(348, "");
pub const RPL_ENDOFEXCEPTLIST: Numeric = n(349, "End of channel exception list");
pub const RPL_VERSION: Numeric = n(351, "");
pub const RPL_WHOREPLY: Numeric = n(352, "");
pub const RPL_WHOSPCRPL: Numeric = n(354, "");
pub const RPL_NAMREPLY: Numeric = n(353, "");
pub const RPL_ENDOFNAMES: Numeric = n(366, "End of /NAMES list");
pub const RPL_BANLIST: Numeric = n(367, "");
pub const RPL_ENDOFBANLIST: Numeric = n(368, "End of channel ban list");
pub const RPL_ENDOFWHOWAS: Numeric = n(369, "End of WHOWAS");
pub const RPL_INFO: Numeric = n(371, "");
pub const RPL_MOTD: Numeric = n(372, "");
pub const RPL_ENDOFINFO: Numeric = n(374, "End of INFO list");
pub const RPL_MOTDSTART: Numeric = n(375, "");
pub const RPL_ENDOFMOTD: Numeric = n(376, "End of /MOTD command.");
pub const RPL_LINKS: Numeric = n(364, "");
pub const RPL_ENDOFLINKS: Numeric = n(365, "End of /LINKS list");
pub const RPL_WHOISHOST: Numeric = n(378, "");
pub const RPL_WHOISMODES: Numeric = n(379, "");
pub const RPL_YOUREOPER: Numeric = n(381, "You are now an IRC operator");
pub const RPL_TIME: Numeric = n(391, "");
pub const ERR_UNKNOWNERROR: Numeric = n(400, "");
pub const ERR_NOSUCHNICK: Numeric = n(401, "No such nick/channel");
pub const ERR_NOSUCHSERVER: Numeric = n(402, "No such server");
pub const ERR_NOSUCHCHANNEL: Numeric = n(403, "No such channel");
pub const ERR_CANNOTSENDTOCHAN: Numeric = n(404, "Cannot send to channel");
pub const ERR_TOOMANYCHANNELS: Numeric = n(405, "You have joined too many channels");
pub const ERR_WASNOSUCHNICK: Numeric = n(406, "There was no such nickname");
pub const ERR_TOOMANYTARGETS: Numeric = n(407, "Too many targets");
pub const ERR_NOORIGIN: Numeric = n(409, "No origin specified");
pub const ERR_NORECIPIENT: Numeric = n(411, "No recipient given");
pub const ERR_NOTEXTTOSEND: Numeric = n(412, "No text to send");
pub const ERR_INPUTTOOLONG: Numeric = n(417, "Input line was too long");
pub const ERR_UNKNOWNCOMMAND: Numeric = n(421, "Unknown command");
pub const ERR_NOMOTD: Numeric = n(422, "MOTD File is missing");
pub const ERR_NONICKNAMEGIVEN: Numeric = n(431, "No nickname given");
pub const ERR_ERRONEUSNICKNAME: Numeric = n(432, "Erroneous nickname");
pub const ERR_NICKNAMEINUSE: Numeric = n(433, "Nickname is already in use");
pub const ERR_NICKCOLLISION: Numeric = n(436, "Nickname collision");
pub const ERR_USERNOTINCHANNEL: Numeric = n(441, "They aren't on that channel");
pub const ERR_NOTONCHANNEL: Numeric = n(442, "You're not on that channel");
pub const ERR_USERONCHANNEL: Numeric = n(443, "is already on channel");
pub const ERR_NOTREGISTERED: Numeric = n(451, "You have not registered");
pub const ERR_NEEDMOREPARAMS: Numeric = n(461, "Not enough parameters");
pub const RPL_REHASHING: Numeric = n(382, "Rehashing");
pub const ERR_ALREADYREGISTERED: Numeric = n(462, "You may not reregister");
pub const ERR_INVALIDUSERNAME: Numeric = n(468, "Your username is not valid");
pub const ERR_PASSWDMISMATCH: Numeric = n(464, "Password incorrect");
pub const ERR_CHANNELISFULL: Numeric = n(471, "Cannot join channel (+l)");
pub const ERR_UNKNOWNMODE: Numeric = n(472, "is unknown mode char to me");
pub const ERR_INVITEONLYCHAN: Numeric = n(473, "Cannot join channel (+i)");
pub const ERR_BANNEDFROMCHAN: Numeric = n(474, "Cannot join channel (+b)");
pub const ERR_BADCHANNELKEY: Numeric = n(475, "Cannot join channel (+k)");
pub const ERR_BADCHANMASK: Numeric = n(476, "Bad Channel Mask");
pub const ERR_NEEDREGGEDNICK: Numeric = n(477, "You need to be logged in to an account to do that");
pub const ERR_BANLISTFULL: Numeric = n(478, "Channel list is full");
pub const ERR_NOPRIVILEGES: Numeric = n(481, "Permission Denied- You're not an IRC operator");
pub const ERR_CHANOPRIVSNEEDED: Numeric = n(482, "You're not channel operator");
pub const ERR_CANTKILLSERVER: Numeric = n(483, "You cant kill a server!");
pub const ERR_NOOPERHOST: Numeric = n(491, "No O-lines for your host");
pub const ERR_UMODEUNKNOWNFLAG: Numeric = n(501, "Unknown MODE flag");
pub const ERR_USERSDONTMATCH: Numeric = n(502, "Cant change mode for other users");
pub const ERR_HELPNOTFOUND: Numeric = n(524, "No help available on this topic");
pub const ERR_INVALIDKEY: Numeric = n(525, "Key is not well-formed");
pub const RPL_STARTTLS: Numeric = n(670, "");
pub const RPL_WHOISSECURE: Numeric = n(671, "is using a secure connection");
pub const RPL_HELPSTART: Numeric = n(704, "");
pub const RPL_HELPTXT: Numeric = n(705, "");
pub const RPL_ENDOFHELP: Numeric = n(706, "");
pub const ERR_NOPRIVS: Numeric = n(723, "Insufficient oper privileges.");
pub const RPL_MONONLINE: Numeric = n(730, "");
pub const RPL_MONOFFLINE: Numeric = n(731, "");
pub const RPL_MONLIST: Numeric = n(732, "");
pub const RPL_ENDOFMONLIST: Numeric = n(733, "End of MONITOR list");
pub const ERR_MONLISTFULL: Numeric = n(734, "Monitor list is full.");
pub const ERR_INVALIDMODEPARAM: Numeric = n(696, "");
// draft/metadata-3.
pub const RPL_WHOISKEYVALUE: Numeric = n(760, "");
pub const RPL_KEYVALUE: Numeric = n(761, "");
pub const RPL_KEYNOTSET: Numeric = n(766, "Key not set");
pub const RPL_METADATASUBOK: Numeric = n(770, "");
pub const RPL_METADATAUNSUBOK: Numeric = n(771, "");
pub const RPL_METADATASUBS: Numeric = n(772, "");
pub const RPL_METADATASYNCLATER: Numeric = n(774, "");
// SASL (IRCv3 sasl-3.2).
pub const RPL_LOGGEDIN: Numeric = n(900, "");
pub const RPL_LOGGEDOUT: Numeric = n(901, "You are now logged out");
pub const ERR_NICKLOCKED: Numeric = n(902, "You must use a nick assigned to you");
pub const RPL_SASLSUCCESS: Numeric = n(903, "SASL authentication successful");
pub const ERR_SASLFAIL: Numeric = n(904, "SASL authentication failed");
pub const ERR_SASLTOOLONG: Numeric = n(905, "SASL message too long");
pub const ERR_SASLABORTED: Numeric = n(906, "SASL authentication aborted");
pub const ERR_SASLALREADY: Numeric = n(907, "You have already authenticated using SASL");
pub const RPL_SASLMECHS: Numeric = n(908, "are available SASL mechanisms");
