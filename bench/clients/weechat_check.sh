#!/usr/bin/env bash
# WeeChat (weechat-headless) against bavard, in tmux, with a netcat-style
# line user.
#
#   bash bench/clients/weechat_check.sh        # exit 0 when every check passed
#   KEEP=1 bash bench/clients/weechat_check.sh # keep the logs
#
# weechat-headless has no screen to type into: it runs in a detached tmux
# session, and is driven through its fifo plugin with the same commands a
# user types (/join #lobby, text, /nick, /topic, /mode, /kick, /msg,
# /quit). What it shows is read from its logger files (one per buffer,
# flushed at once), which hold the buffer lines as displayed: time, prefix,
# message. Two triggers copy the raw IRC traffic into the core buffer's log;
# any 4xx/5xx numeric in it fails the check. With SCREENS=DIR, the buffer
# logs and the raw traffic are copied to DIR.
#
# Before anything else, WeeChat logs in with SASL: PLAIN on the server it
# then chats on, SCRAM-SHA-256 on a second connection, both to the account
# `wee`, created with `bavard account add` before the server starts.
source "$(dirname "$0")/common.sh"
need weechat-headless tmux

NICK=wee
PASSWORD=wee-secret
add_account "$NICK" "$PASSWORD"
start_server
line_connect linus

WDIR="$TMP/weechat"
FIFO="$TMP/weechat.fifo"
LOGS="$WDIR/logs"
log "starting weechat-headless $(weechat-headless --version)"
start_tmux weechat sh -c "exec weechat-headless --dir '$WDIR' --stdout --no-connect \
  -r '/set fifo.file.path $FIFO'"
for i in $(seq $((WAIT * 10))); do [ -p "$FIFO" ] && break; sleep 0.1; done
[ -p "$FIFO" ] || fail "weechat did not create its fifo $FIFO"

# wc BUFFER TEXT: types TEXT into BUFFER ("" for the current one).
wc() {
  local line
  if [ -n "$1" ]; then line="$1 *$2"; else line="*$2"; fi
  printf '%s\n' "$line" | timeout 5 tee "$FIFO" >/dev/null || fail "could not write to the fifo: $line"
}
buflog() { printf '%s/%s.weechatlog' "$LOGS" "$1"; }
# wait_buf BUFFER TEXT: WeeChat's buffer BUFFER shows TEXT.
wait_buf() { wait_file "$(buflog "$1")" "$2" "WeeChat buffer $1"; }
TAB=$'\t'

wc "" "/set logger.file.flush_delay 0"
wc "" "/set irc.server_default.anti_flood_prio_high 0"
wc "" "/set irc.server_default.anti_flood_prio_low 0"
wc "" "/trigger add rawin signal \"*,irc_raw_in_*\" \"\" \"\" \"/print -core <<< \${tg_signal_data}\""
wc "" "/trigger add rawout signal \"*,irc_out_*\" \"\" \"\" \"/print -core >>> \${tg_signal_data}\""
wc "" "/server add b 127.0.0.1/$IRC_PORT"
wc "" "/set irc.server.b.nicks $NICK"
wc "" "/set irc.server.b.sasl_mechanism plain"
wc "" "/set irc.server.b.sasl_username $NICK"
wc "" "/set irc.server.b.sasl_password $PASSWORD"
wc "" "/connect b"
log "SASL PLAIN"
wait_buf irc.server.b "You are now logged in as $NICK"
wait_buf irc.server.b "SASL authentication successful"
wait_buf irc.server.b "End of /MOTD command."

log "SASL SCRAM-SHA-256 (a second connection)"
wc "" "/server add s 127.0.0.1/$IRC_PORT"
wc "" "/set irc.server.s.nicks weescram"
wc "" "/set irc.server.s.sasl_mechanism scram-sha-256"
wc "" "/set irc.server.s.sasl_username $NICK"
wc "" "/set irc.server.s.sasl_password $PASSWORD"
wc "" "/connect s"
wait_buf irc.server.s "You are now logged in as $NICK"
wait_buf irc.server.s "SASL authentication successful"
wait_buf irc.server.s "End of /MOTD command."
wait_file "$(buflog core.weechat)" ">>> AUTHENTICATE SCRAM-SHA-256" "WeeChat's raw traffic"
wc irc.server.s "/disconnect s"

log "join #lobby"
wc irc.server.b "/join #lobby"
wait_line "[server] $NICK joined #lobby"
wait_buf "irc.b.#lobby" "has joined #lobby"
wait_buf "irc.b.#lobby" "Channel #lobby: 2 nicks"
line_send "WHO"
wait_file "$TMP/line.out" "$NICK($NICK)" "the line user's WHO (logged in as $NICK)"
line_send "MSG hello weechat, this is netcat"
wait_buf "irc.b.#lobby" "linus${TAB}hello weechat, this is netcat"
wc "irc.b.#lobby" "hello netcat user, weechat here"
wait_line "[$NICK] hello netcat user, weechat here"

log "nick"
wc "irc.b.#lobby" "/nick ${NICK}2"
wait_line "[server] $NICK is now known as ${NICK}2"
wait_buf "irc.b.#lobby" "You are now known as ${NICK}2"
NICK=${NICK}2
line_send "NICK linus2"
wait_buf "irc.b.#lobby" "linus is now known as linus2"

log "topic"
wc "irc.b.#lobby" "/topic weechat was here"
wait_line "[server] $NICK changed the topic of #lobby to: weechat was here"
wait_buf "irc.b.#lobby" "to \"weechat was here\""
line_send "TOPIC netcat too"
wait_buf "irc.b.#lobby" "linus2 has changed topic for #lobby from \"weechat was here\" to \"netcat too\""
line_send "MSG nice client"
wait_buf "irc.b.#lobby" "linus2${TAB}nice client"

log "own channel: modes and kick"
wc irc.server.b "/join #weechat"
wait_buf "irc.b.#weechat" "Channel #weechat: 1 nick (1 op"
line_send "JOIN #weechat"
wait_line "[server] You joined #weechat"
wait_buf "irc.b.#weechat" "linus2 (line user) (line@127.0.0.1) has joined #weechat"
wc "irc.b.#weechat" "/mode +m"
wait_line "[server] $NICK sets mode +m on #weechat"
wait_buf "irc.b.#weechat" "Mode #weechat [+m] by $NICK"
line_send "MSG muted?"
wait_line "[server] You cannot send to #weechat"
wc "irc.b.#weechat" "/voice linus2"
wait_line "[server] $NICK sets mode +v linus2 on #weechat"
wait_buf "irc.b.#weechat" "Mode #weechat [+v linus2] by $NICK"
line_send "MSG voiced now"
wait_buf "irc.b.#weechat" "+linus2${TAB}voiced now"
wc "irc.b.#weechat" "/kick linus2 enough testing"
wait_line "[server] linus2 was kicked from #weechat by $NICK (enough testing)"
wait_buf "irc.b.#weechat" "$NICK has kicked linus2 (enough testing)"
line_send "PART"
wait_line "[server] You joined #lobby"

log "private messages"
wc irc.server.b "/msg linus2 psst from weechat"
wait_line "*$NICK* psst from weechat"
line_send "PM $NICK psst back from netcat"
wait_buf irc.b.linus2 "linus2${TAB}psst back from netcat"

log "quit"
wc "" "/quit weechat leaves"
wait_line "[server] $NICK is disconnected"
for i in $(seq $((WAIT * 10))); do
  tm has-session -t "$CLIENT_SESSION" 2>/dev/null || break
  sleep 0.1
done
tm has-session -t "$CLIENT_SESSION" 2>/dev/null && fail "weechat did not exit after /quit"

log "raw traffic"
RAW="$TMP/weechat.raw"
# "<<< " lines come from the server, ">>> " lines go to it.
grep -E $'\t(<<<|>>>) ' "$(buflog core.weechat)" | cut -f3- >"$RAW" || true
[ -s "$RAW" ] || fail "no raw traffic was logged"
check_error_numerics "$RAW" '^<<< (@[^ ]+ )?:[^ ]+ [45][0-9][0-9] '
if [ -n "${SCREENS:-}" ]; then
  mkdir -p "$SCREENS"
  cp "$TMP/line.out" "$SCREENS/weechat-line-user.txt"
  for b in "irc.b.#lobby" "irc.b.#weechat" irc.b.linus2 irc.server.b; do
    cp "$(buflog "$b")" "$SCREENS/weechat-$b.log"
  done
  cp "$RAW" "$SCREENS/"
fi
echo "OK: WeeChat $(weechat-headless --version) (headless) logged in with SASL PLAIN and SCRAM-SHA-256, talked to bavard and to a line user"
