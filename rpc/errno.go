package rpc

// Errno is MoFang's result code: every method's result carries one in
// "errno", with a message for people in "errmsg". 1000 means success.
//
// Errnos report outcomes of a well-formed call (wrong password, not your
// room). A malformed call gets a JSON-RPC error object instead (-32600,
// -32602, ...), and an unexpected server failure gets -32603.
type Errno int

// The errnos. Their numbers are part of the API: never renumber.
const (
	ErrnoOK           Errno = 1000 // success
	ErrnoInvalid      Errno = 1001 // a param's value is not acceptable (too long, out of range)
	ErrnoUserExists   Errno = 1002 // User.register: the user name is taken
	ErrnoTooMany      Errno = 1003 // too many attempts or messages: wait and try again
	ErrnoBadLogin     Errno = 1004 // User.login: wrong user name or password
	ErrnoLogin        Errno = 1005 // log in again: no token, or it is invalid or expired, or the refresh token is
	ErrnoForbidden    Errno = 1006 // not allowed: the room is not yours
	ErrnoNoRoom       Errno = 1007 // no such room
	ErrnoRoomPassword Errno = 1008 // the room's password is wrong (or missing)
	ErrnoRoomStopped  Errno = 1009 // the room has ended and cannot change
	ErrnoNoUser       Errno = 1010 // the user does not exist (any more)
	ErrnoNeedSocket   Errno = 1011 // the method works on a websocket connection only
	ErrnoNotLive      Errno = 1012 // the room is not live
	ErrnoTooManyRooms Errno = 1013 // this connection is in too many rooms
	ErrnoNotJoined    Errno = 1014 // join the room (on this connection) first
	ErrnoNoGift       Errno = 1015 // no such gift
	ErrnoNoCoins      Errno = 1016 // not enough coins
	ErrnoNotAdmin     Errno = 1017 // the method is for admins only
	ErrnoNoStream     Errno = 1018 // no such stream in the media engine
	ErrnoNoClient     Errno = 1019 // no such media client
	ErrnoNoRecord     Errno = 1020 // no such recording
	ErrnoUnavailable  Errno = 1021 // the database does not answer in time: try again later
	ErrnoBusy         Errno = 1022 // the user (or you) is in another call
	ErrnoNoCall       Errno = 1023 // no such call, or it has ended
	ErrnoNotInRoom    Errno = 1024 // the user is not in this room (on any connection)
	ErrnoCohostOn     Errno = 1025 // the room already has a co-host
	ErrnoNoCohost     Errno = 1026 // no such co-host session, invitation or request
	ErrnoNoForward    Errno = 1027 // no such restreaming destination in this room
	ErrnoForwardCap   Errno = 1028 // the room has as many restreaming destinations as it may
	ErrnoForwardURL   Errno = 1029 // the destination URL is not acceptable (rtmp:// or rtmps:// only)

	// Moderation (Live.room.mod.*, Live.comment, Live.room.join).
	ErrnoMuted         Errno = 1030 // you are muted in this room (errmsg says until when)
	ErrnoKicked        Errno = 1031 // you were kicked out of this room: try again later (errmsg says when)
	ErrnoBannedHere    Errno = 1032 // you are banned from this room
	ErrnoNotModerator  Errno = 1033 // only the room's owner, its moderators and admins may do this
	ErrnoProtected     Errno = 1034 // that user cannot be acted on: the owner, or (for a moderator) a moderator or an admin
	ErrnoSlowMode      Errno = 1035 // slow mode: one comment every N seconds (errmsg says N)
	ErrnoFollowersOnly Errno = 1036 // only the owner's followers may comment in this room
	ErrnoWordRefused   Errno = 1037 // the comment holds a word that is not allowed here
	ErrnoNoComment     Errno = 1038 // no such comment in this room
	ErrnoTooManyMods   Errno = 1039 // the room has as many moderators as it may

	ErrnoFollowSelf     Errno = 1040 // User.follow: you cannot follow yourself
	ErrnoNoSchedule     Errno = 1041 // no such scheduled live
	ErrnoScheduleDone   Errno = 1042 // the scheduled live already started, was missed or was cancelled
	ErrnoManySchedules  Errno = 1043 // the room has as many upcoming lives as it may
	ErrnoFollowingLimit Errno = 1044 // User.follow: you follow as many users as you may
	// Image uploads (POST /upload/avatar, /upload/cover).
	ErrnoImageTooLarge  Errno = 1050 // the file is larger than the limit
	ErrnoNotImage       Errno = 1051 // the content is not a PNG, JPEG, GIF or WebP picture
	ErrnoImageSize      Errno = 1052 // the picture's dimensions are beyond the limits
	ErrnoBadUpload      Errno = 1053 // the upload request is malformed (no file, a path in the file name)
	ErrnoImageNotStored Errno = 1054 // the server could not store the picture

	// Live sessions (Live.session.*).
	ErrnoNoSession Errno = 1045 // no such live session
)

var errnoText = map[Errno]string{
	ErrnoOK:           "ok",
	ErrnoInvalid:      "invalid parameter value",
	ErrnoUserExists:   "user name already taken",
	ErrnoTooMany:      "too many attempts, slow down and try again later",
	ErrnoBadLogin:     "wrong user name or password",
	ErrnoLogin:        "please log in again",
	ErrnoForbidden:    "permission denied",
	ErrnoNoRoom:       "room does not exist",
	ErrnoRoomPassword: "wrong room password",
	ErrnoRoomStopped:  "the live has ended",
	ErrnoNoUser:       "user does not exist",
	ErrnoNeedSocket:   "this method needs a websocket connection",
	ErrnoNotLive:      "the room is not live",
	ErrnoTooManyRooms: "this connection is in too many rooms",
	ErrnoNotJoined:    "join the room first",
	ErrnoNoGift:       "gift does not exist",
	ErrnoNoCoins:      "not enough coins",
	ErrnoNotAdmin:     "admins only",
	ErrnoNoStream:     "stream does not exist",
	ErrnoNoClient:     "client does not exist",
	ErrnoNoRecord:     "recording does not exist",
	ErrnoUnavailable:  "the service is temporarily unavailable (database not answering), try again later",
	ErrnoBusy:         "the user is in another call",
	ErrnoNoCall:       "no such call, or it has ended",
	ErrnoNotInRoom:    "the user is not in this room",
	ErrnoCohostOn:     "the room already has a co-host",
	ErrnoNoCohost:     "no such co-host session, invitation or request",
	ErrnoNoForward:    "no such restreaming destination",
	ErrnoForwardCap:   "too many restreaming destinations",
	ErrnoForwardURL:   "the destination URL is not acceptable: rtmp:// or rtmps:// only",

	ErrnoMuted:         "you are muted in this room",
	ErrnoKicked:        "you were kicked out of this room, try again later",
	ErrnoBannedHere:    "you are banned from this room",
	ErrnoNotModerator:  "only the room's owner and moderators may do this",
	ErrnoProtected:     "you cannot act on this user",
	ErrnoSlowMode:      "slow mode is on, wait before commenting again",
	ErrnoFollowersOnly: "only followers may comment in this room",
	ErrnoWordRefused:   "the comment holds a word that is not allowed here",
	ErrnoNoComment:     "no such comment in this room",
	ErrnoTooManyMods:   "the room has as many moderators as it may",

	ErrnoFollowSelf:     "you cannot follow yourself",
	ErrnoNoSchedule:     "no such scheduled live",
	ErrnoScheduleDone:   "the scheduled live is no longer upcoming (started, missed or cancelled)",
	ErrnoManySchedules:  "the room has too many upcoming lives scheduled",
	ErrnoFollowingLimit: "you follow too many users",
	ErrnoImageTooLarge:  "the image file is too large",
	ErrnoNotImage:       "the file is not a PNG, JPEG, GIF or WebP image",
	ErrnoImageSize:      "the image is too large in width, height or pixels",
	ErrnoBadUpload:      "the upload is malformed",
	ErrnoImageNotStored: "the image could not be stored, try again later",

	ErrnoNoSession: "live session does not exist",
}

// Text returns the standard message of an errno.
func (e Errno) Text() string {
	if s, ok := errnoText[e]; ok {
		return s
	}
	return "error"
}

// Status is the head of every result: {"errno": 1000, "errmsg": "ok"}.
type Status struct {
	Errno  Errno  `json:"errno"`
	Errmsg string `json:"errmsg"`
}

// ok is the status of success.
func ok() Status { return Status{Errno: ErrnoOK, Errmsg: ErrnoOK.Text()} }

// fail is the status of an errno with its standard message.
func fail(e Errno) Status { return Status{Errno: e, Errmsg: e.Text()} }

// failf is the status of an errno with a specific message.
func failf(e Errno, msg string) Status { return Status{Errno: e, Errmsg: msg} }

// Reply is a result with a "data" member.
type Reply[T any] struct {
	Status
	Data *T `json:"data,omitempty"`
}
