#!/usr/bin/env bash
# irssi against bavard, headless in tmux, with a netcat-style line user.
#
#   bash bench/clients/irssi_check.sh        # exit 0 when every check passed
#   KEEP=1 bash bench/clients/irssi_check.sh # keep the logs and screens
#
# Starts bavard (127.0.0.1, port 0), irssi in a detached tmux session of its
# own tmux server, and drives irssi with send-keys: /join #lobby, messages
# both ways, /nick, /topic, a channel of its own with /mode +m and +v,
# /kick, /msg both ways, /quit. The line user checks what it receives;
# capture-pane checks what irssi shows. irssi's /rawlog records the raw IRC
# traffic; any 4xx/5xx numeric in it fails the check. Screens are saved in
# $TMP (printed with KEEP=1) and, with SCREENS=DIR, copied to DIR.
#
# irssi connects through a network entry that logs in with SASL PLAIN to
# the account `ircy`, created with `bavard account add` before the server
# starts.
source "$(dirname "$0")/common.sh"
need irssi tmux

NICK=ircy
PASSWORD=ircy-secret
add_account "$NICK" "$PASSWORD"
start_server
line_connect linus

mkdir -p "$TMP/irssi"
# Startup commands run before the connection: keep a long raw log in memory.
cat >"$TMP/irssi/startup" <<EOF
/set rawlog_lines 5000
/set settings_autosave off
/network add -sasl_mechanism PLAIN -sasl_username $NICK -sasl_password $PASSWORD bavard
/server add -network bavard 127.0.0.1 $IRC_PORT
EOF
log "starting $(irssi --version)"
start_tmux irssi env TERM=screen-256color irssi --home="$TMP/irssi" -c bavard -n "$NICK"
log "SASL PLAIN"
wait_screen "You are now logged in as $NICK"
wait_screen "End of /MOTD"
keys "/rawlog open $TMP/irssi.raw"

log "join #lobby"
keys "/join #lobby"
wait_line "[server] $NICK joined #lobby"
wait_screen "$NICK ["                       # -!- ircy [~ircy@...] has joined #lobby
wait_screen "linus"                          # in the names list
line_send "WHO"
wait_file "$TMP/line.out" "$NICK($NICK)" "the line user's WHO (logged in as $NICK)"
line_send "MSG hello irssi, this is netcat"
wait_screen "linus> hello irssi, this is netcat"
keys "hello netcat user, irssi here"
wait_line "[$NICK] hello netcat user, irssi here"

log "nick"
keys "/nick ${NICK}2"
wait_line "[server] $NICK is now known as ${NICK}2"
wait_screen "You're now known as ${NICK}2"
NICK=${NICK}2
line_send "NICK linus2"
wait_screen "linus is now known as linus2"

log "topic"
keys "/topic irssi was here"
wait_line "[server] $NICK changed the topic of #lobby to: irssi was here"
wait_screen "changed the topic of #lobby to: irssi was here"
line_send "TOPIC netcat too"
wait_screen "linus2 changed the topic of #lobby to: netcat too"
line_send "MSG nice client"
wait_screen "linus2> nice client"
save_screen "$TMP/screen-lobby.txt"

log "own channel: modes and kick"
keys "/join #irssi"
wait_screen "$NICK ["
line_send "JOIN #irssi"
wait_line "[server] You joined #irssi"
wait_screen "linus2 [line@"
keys "/mode #irssi +m"
wait_line "[server] $NICK sets mode +m on #irssi"
wait_screen "mode/#irssi [+m] by $NICK"
line_send "MSG muted?"
wait_line "[server] You cannot send to #irssi"
keys "/mode #irssi +v linus2"
wait_line "[server] $NICK sets mode +v linus2 on #irssi"
wait_screen "mode/#irssi [+v linus2] by $NICK"
line_send "MSG voiced now"
wait_screen "+linus2> voiced now"
keys "/kick linus2 enough testing"
wait_line "[server] linus2 was kicked from #irssi by $NICK (enough testing)"
wait_screen "linus2 was kicked from #irssi by $NICK [enough testing]"
save_screen "$TMP/screen-irssi-channel.txt"
line_send "PART"
wait_line "[server] You joined #lobby"

log "private messages"
keys "/msg linus2 psst from irssi"
wait_line "*$NICK* psst from irssi"
line_send "PM $NICK psst back from netcat"
keys "/query linus2"
wait_screen "linus2> psst back from netcat"
save_screen "$TMP/screen-query.txt"

keys "/window 1"
wait_screen "[(status)]"
save_screen "$TMP/screen-status.txt"

log "quit"
keys "/quit irssi leaves"
wait_line "[server] $NICK is disconnected"
for i in $(seq $((WAIT * 10))); do
  tm has-session -t "$CLIENT_SESSION" 2>/dev/null || break
  sleep 0.1
done
tm has-session -t "$CLIENT_SESSION" 2>/dev/null && fail "irssi did not exit after /quit"

log "raw traffic"
# irssi's raw log: ">> " lines come from the server, "<< " lines go to it.
[ -s "$TMP/irssi.raw" ] || fail "no raw log was written"
check_error_numerics "$TMP/irssi.raw" '^>> (@[^ ]+ )?:[^ ]+ [45][0-9][0-9] '
if [ -n "${SCREENS:-}" ]; then
  mkdir -p "$SCREENS"
  cp "$TMP/line.out" "$SCREENS/irssi-line-user.txt"
  cp "$TMP"/screen-*.txt "$TMP/irssi.raw" "$SCREENS/"
fi
[ "$KEEP" = 1 ] && for f in "$TMP"/screen-*.txt; do echo "--- $f"; cat "$f"; done
grep -qE " 903 [^ ]+ :SASL authentication successful" "$TMP/irssi.raw" \
  || fail "no 903 in irssi's raw log"
echo "OK: $(irssi --version) logged in with SASL PLAIN, talked to bavard and to a line user"
