// The live room. Live.stream.read (with the room's password when it has
// one) gives the room and its play URLs; the video plays play.flv through
// mpegts.js; the websocket joins the room (Live.room.join) and receives
// its events (Live.room.events: online, join, leave, comment, like, gift),
// and sends comments, likes and gifts. A room that is not live is polled
// until it is; a stream that breaks is picked up again when the publisher
// comes back; a dropped websocket reconnects and joins again. A stream in
// a codec the browser cannot decode falls back to the browser's own HLS
// player where that decodes it, or says so. The video has fullscreen (the
// whole room, the chat over the video) and picture-in-picture buttons; a
// phone held sideways gets the same layout as fullscreen.
//
// Playback is over WebRTC (WHEP, play.whep) where the browser has it:
// "low latency", with an approximate latency shown. A WHEP session the
// server refuses (409: the stream has B-frames; 404), or that does not
// connect within 5 s or shows no picture, falls back to HTTP-FLV with
// the reason in one line. A toggle switches between the two, remembered
// in localStorage.
//
// Members of the room can call each other (calls.js: a "Call" button in
// the online list), and the host can bring a viewer on as co-host
// (cohost.js: the guest's video beside the host's for everyone).

import { call, Errno, session } from '../api.js';
import { canPlayFLV, canPlayHLS, codecName, LivePlayer, nativeCanDecode } from '../player.js';
import { RpcSocket } from '../socket.js';
import { avatar, banner, dialog, formatCount, h, icon, nickname, toast } from '../ui.js';
import { rankBoard } from './lives.js';
import { canWebRTC } from '../webrtc.js';
import { formatCoins } from '../format.js';
import { Calls } from './calls.js';
import { Cohost } from './cohost.js';
import { joinError, Moderation } from './moderation.js';
import { Quality } from './quality.js';
import { Danmaku } from './danmaku.js';
import { showCover } from './pictures.js';
import { shareButton } from './share.js';
import { followButton } from './follow.js';
import { t } from '../i18n/index.js';

const POLL_OFFLINE = 2000; // how often a room that is not live is asked about
const POLL_LOST = 1000; // ... and one whose stream just broke
const MAX_CHAT = 200; // lines kept in the chat
// A phone held sideways: the video fills the screen, the chat over it.
const LANDSCAPE_PHONE = '(orientation: landscape) and (max-height: 540px)';

const MODE_KEY = 'mofang.playMode'; // 'webrtc' or 'flv', the viewer's choice

let giftsCache = null;

export function roomView(root, { params, go }) {
  const roomId = params[0];
  const me = session.get().user || {};
  let password; // the room password the user typed, if any
  let info = null; // Live.stream.read's data
  let isOwner = false;
  let joined = false;
  let left = false;
  let pollTimer = null;
  let likes = 0;
  let native = false; // play the room's HLS with the browser's own player
  const online = new Map(); // user id -> user
  const rank = rankBoard(roomId, () => password); // lives.js
  // mode is the viewer's choice; fallback, why WebRTC did not play this
  // stream (then it plays over HTTP-FLV until the stream ends or the
  // viewer asks for WebRTC again).
  let mode = canWebRTC() && localStorage.getItem(MODE_KEY) !== 'flv' ? 'webrtc' : 'flv';
  let fallback = '';
  let latencyTimer = null;
  let calls = null; // 1:1 calls (calls.js), once the socket exists
  let cohost = null; // co-hosts (cohost.js)
  let mod = null; // moderation (moderation.js)

  // The page.
  const video = h('video', { id: 'video', playsinline: true, 'webkit-playsinline': true });
  const stateText = h('p', { class: 'state-text', dataset: { offline: t('room.offlineBadge') } }); // the word above an offline room's text (style.css)
  const stateAction = h('div', { class: 'state-action' });
  const stage = h('div', { class: 'stage-state', id: 'stage-state', dataset: { state: 'loading' } }, h('div', { class: 'spinner' }), stateText, stateAction);
  const unmute = h('button', { class: 'btn unmute', id: 'unmute', hidden: true, onclick: () => player.unmute() }, icon('volume'), t('room.tapForSound'));
  const giftLayer = h('div', { class: 'gift-layer', 'aria-live': 'polite' });
  const heartLayer = h('div', { class: 'heart-layer', 'aria-hidden': 'true' });
  const title = h('div', { class: 'room-title' });
  const follow = followButton();
  const viewers = h('span', { class: 'pill', id: 'viewer-count', title: t('room.peopleInRoom') }, icon('users'), h('b', {}, '0'));
  const likeTotal = h('span', { class: 'pill', id: 'like-count', title: t('room.likes') }, icon('heart', 'red'), h('b', {}, '0'));
  const ownerLink = h('a', { class: 'btn btn-ghost small', href: '#/me', hidden: true, id: 'obs-link' }, t('room.obsSettings'));
  const onlineList = h('ul', { class: 'online-list', id: 'online-list' });
  const chat = h('ul', { class: 'chat', id: 'chat', 'aria-live': 'polite' });
  const input = h('input', { id: 'chat-input', maxlength: 200, placeholder: t('room.saySomething'), autocomplete: 'off', enterkeyhint: 'send' });
  const sendBtn = h('button', { class: 'btn btn-primary btn-icon', type: 'submit', id: 'chat-send', 'aria-label': t('room.send') }, icon('send'));
  const likeBtn = h('button', { class: 'btn btn-round like', type: 'button', id: 'like', 'aria-label': t('room.like'), onclick: like }, icon('heart'));
  const giftBtn = h('button', { class: 'btn btn-round gift', type: 'button', id: 'gift', 'aria-label': t('room.sendGift'), onclick: openGifts }, icon('gift'));
  const composer = h('form', { class: 'composer', id: 'composer' }, input, sendBtn, likeBtn, giftBtn);
  composer.addEventListener('submit', sendComment);
  const pipBtn = h('button', { class: 'btn btn-icon glass', type: 'button', id: 'pip', 'aria-label': t('room.pip'), title: t('room.pip'), hidden: true, onclick: togglePiP }, icon('pip'));
  const modeBtn = h('button', { class: 'btn glass small play-mode', type: 'button', id: 'play-mode', hidden: !canWebRTC(), onclick: toggleMode });
  const latencyPill = h('span', { class: 'pill latency', id: 'latency', hidden: true, title: t('room.latencyTitle') });
  // One line; a tap shows all of it (the server's reason can be long).
  const modeNote = h('p', { class: 'play-note', id: 'play-note', role: 'status', hidden: true, onclick: () => modeNote.classList.toggle('open') });
  // Another quality may play over WebRTC where this one could not
  // (renditions have no B-frames): WebRTC is tried again.
  const quality = new Quality({ video, onChange: () => { fallback = ''; if (info && info.status && !native) apply(info); } });
  const fullBtn = h('button', { class: 'btn btn-icon glass', type: 'button', id: 'fullscreen', 'aria-label': t('room.fullscreen'), title: t('room.fullscreen'), hidden: !canFullscreen(), onclick: toggleFullscreen }, icon('expand'));
  const stageBox = h('div', { class: 'stage' },
    video, stage, unmute, giftLayer, heartLayer,
    h('div', { class: 'stage-top' },
      h('button', { class: 'btn btn-icon glass', id: 'leave', 'aria-label': t('room.leave'), onclick: () => go('/rooms') }, icon('back')),
      title,
      h('div', { class: 'pills' }, viewers, likeTotal),
    ),
    modeNote,
    h('div', { class: 'stage-controls' }, latencyPill, quality.select, modeBtn, pipBtn, fullBtn),
  );
  const danmaku = new Danmaku(stageBox, video); // comments over the video
  stageBox.querySelector('.stage-controls').prepend(danmaku.button, shareButton(roomId, () => info && info.room_name));

  root.append(
    h('div', { class: 'page page-room' },
      stageBox,
      h('aside', { class: 'side' },
        h('div', { class: 'online' },
          h('h2', {}, t('room.online'), ' ', h('span', { class: 'muted', id: 'online-n' }, '')),
          ownerLink,
          onlineList,
        ),
        h('div', { class: 'cohost-slot' }),
        rank.el,
        chat,
        composer,
      ),
    ),
  );
  const page = root.querySelector('.page-room');
  setJoined(false);

  const player = new LivePlayer(video, (s, codec) => {
    unmute.hidden = s !== 'muted';
    if (s === 'playing' || s === 'muted') {
      if (stage.dataset.state !== 'playing') performance.mark('mofang:playing');
      setStage('playing');
      drawMode();
    }
    if (s === 'webrtc-failed') {
      // codec is the reason here. HTTP-FLV instead, saying why.
      fallback = codec;
      drawMode();
      if (info) apply(info);
      return;
    }
    if (s === 'lost') {
      setStage('loading', t('room.interrupted'));
      poll(POLL_LOST);
    }
    if (s === 'unsupported') {
      if (info && info.play && info.play.hls && canPlayHLS(video) && nativeCanDecode(video, codec)) {
        // The browser's own player decodes it (Safari and H.265).
        native = true;
        setStage('loading');
        player.playNative(info.play.hls);
        return;
      }
      setStage('unsupported', t('room.codecUnsupported', { codec: codecName(codec) }));
      poll(POLL_OFFLINE);
    }
  });

  drawMode();

  // The stage takes the video's shape (a phone's portrait stream is tall),
  // within bounds the style sheet sets.
  const onResize = () => {
    if (video.videoWidth && video.videoHeight) stageBox.style.setProperty('--video-aspect', `${video.videoWidth} / ${video.videoHeight}`);
  };
  video.addEventListener('resize', onResize);

  // Fullscreen is the whole room, so that the chat lies over the video;
  // where only a video can go fullscreen (iPhone), the video alone.
  function canFullscreen() {
    return document.fullscreenEnabled || !!document.webkitFullscreenEnabled || typeof video.webkitEnterFullscreen === 'function';
  }

  function fullscreenElement() {
    return document.fullscreenElement || document.webkitFullscreenElement || null;
  }

  function exitFullscreen() {
    const p = document.exitFullscreen ? document.exitFullscreen() : document.webkitExitFullscreen && document.webkitExitFullscreen();
    return Promise.resolve(p).catch(() => {});
  }

  async function toggleFullscreen() {
    try {
      if (fullscreenElement()) {
        await exitFullscreen();
        return;
      }
      if (page.requestFullscreen) await page.requestFullscreen({ navigationUI: 'hide' });
      else if (page.webkitRequestFullscreen) page.webkitRequestFullscreen();
      else {
        video.webkitEnterFullscreen();
        return;
      }
      // A wide stream on a phone: turn the screen sideways where allowed.
      if (video.videoWidth > video.videoHeight && screen.orientation && screen.orientation.lock && matchMedia('(pointer: coarse)').matches) {
        screen.orientation.lock('landscape').catch(() => {});
      }
    } catch {
      toast(t('room.noFullscreen'), 'warn');
    }
  }

  function canPiP() {
    return (document.pictureInPictureEnabled && !video.disablePictureInPicture) || typeof video.webkitSetPresentationMode === 'function';
  }

  async function togglePiP() {
    try {
      if (document.pictureInPictureElement) await document.exitPictureInPicture();
      else if (video.requestPictureInPicture) await video.requestPictureInPicture();
      else video.webkitSetPresentationMode(video.webkitPresentationMode === 'picture-in-picture' ? 'inline' : 'picture-in-picture');
    } catch {
      toast(t('room.pipLater'), 'warn');
    }
  }

  // immersive: the video fills the screen and the chat lies over it, in
  // fullscreen and on a phone held sideways.
  const landscape = matchMedia(LANDSCAPE_PHONE);
  const layout = () => {
    const full = fullscreenElement() === page;
    page.classList.toggle('immersive', full || landscape.matches);
    fullBtn.replaceChildren(icon(full ? 'shrink' : 'expand'));
    fullBtn.setAttribute('aria-label', full ? t('room.exitFullscreen') : t('room.fullscreen'));
    if (!full && screen.orientation && screen.orientation.unlock) {
      try {
        screen.orientation.unlock();
      } catch {
        // not locked
      }
    }
    scrollChat(true);
  };
  document.addEventListener('fullscreenchange', layout);
  document.addEventListener('webkitfullscreenchange', layout);
  landscape.addEventListener('change', layout);
  layout();

  const socket = new RpcSocket({
    onOpen: () => join(),
    onNotify: (method, p) => {
      if (!p || String(Number(p.room_id)) !== String(Number(roomId))) return;
      if (method === 'Live.room.events') {
        for (const ev of p.events || []) onEvent(ev);
      } else if (method === 'Live.call.events') {
        calls.onEvent(p);
      } else if (method === 'Live.cohost.events') {
        cohost.onEvent(p);
      }
    },
    onState: (s, delay) => {
      if (s === 'open') banner('');
      // A new connection ('connecting' after the browser came back
      // online, 'reconnecting' after a drop) is not in the room until it
      // joins again; the server hangs up a call whose websocket closed.
      if ((s === 'connecting' || s === 'reconnecting') && !left) {
        calls.lost(t('room.dropped'));
        setJoined(false);
      }
      if (s === 'reconnecting' && !left) {
        banner(delay ? t('room.reconnectIn', { s: Math.ceil(delay / 1000) }) : t('room.reconnecting'), 'warn');
      }
    },
  });

  calls = new Calls({ roomId, me, socket, page, roomVideo: video, onChange: () => drawMembers() });
  cohost = new Cohost({
    roomId, me, socket, stage: stageBox,
    host: () => info && info.user,
    hostOnline: () => !!(info && info.user && online.has(info.user.id)),
    // The viewer's choice: the guest's stream falls back by itself (the
    // room's may have failed for its B-frames, which a browser's has not).
    mode: () => mode,
    onChange: () => drawMembers(),
  });
  root.querySelector('.cohost-slot').replaceWith(cohost.box);
  mod = new Moderation({ roomId, me, chat, sysLine, owner: () => info && info.user, onChange: () => drawMembers() });
  chat.before(mod.bar);

  // The stage overlay: 'loading', 'playing' (hidden), 'offline', 'ended',
  // 'missing', 'password', 'unsupported'.
  function setStage(state, text, action) {
    stage.dataset.state = state;
    stage.hidden = state === 'playing';
    pipBtn.hidden = state !== 'playing' || !canPiP();
    stateText.textContent = text || (state === 'loading' ? t('room.connecting') : '');
    stateAction.replaceChildren(...(action ? [action] : []));
  }

  function setJoined(j) {
    joined = j;
    input.disabled = !j;
    sendBtn.disabled = !j;
    likeBtn.disabled = !j;
    giftBtn.disabled = !j;
    input.placeholder = j ? t('room.saySomething') : info && info.status ? t('room.joiningChat') : t('room.chatOpensLive');
    if (calls) calls.enabled = j;
    if (cohost) cohost.setEnabled(j);
  }

  function backButton() {
    return h('a', { class: 'btn btn-primary', href: '#/rooms' }, t('room.back'));
  }

  // enter reads the room, asking for its password when it has one.
  async function enter(pw) {
    let r;
    try {
      r = await call('Live.stream.read', pw === undefined ? { room_id: roomId } : { room_id: roomId, password: pw });
    } catch (e) {
      if (left) return;
      switch (e.errno) {
        case Errno.WRONG_ROOM_PASSWORD:
          askPassword(pw === undefined ? '' : t('room.wrongPassword'));
          return;
        case Errno.SLOW_DOWN:
          askPassword(t('room.tooManyPasswords'));
          return;
        case Errno.NO_ROOM:
          setStage('missing', t('room.noRoom'), backButton());
          return;
        case Errno.LOGIN_AGAIN:
          return;
        default:
          if (joinError(e)) return setStage('missing', joinError(e), backButton());
          setStage('loading', e.errno === Errno.NETWORK ? t('room.networkLost') : e.message);
          pollTimer = setTimeout(() => enter(pw), POLL_OFFLINE);
          return;
      }
    }
    if (left) return;
    performance.mark('mofang:room-read'); // User Timing: entering a room, step by step
    password = pw;
    info = r.data;
    isOwner = info.user && info.user.id === me.id;
    giftBtn.hidden = isOwner; // nobody can gift their own room
    ownerLink.hidden = !isOwner;
    rank.showStats(isOwner);
    rank.load();
    cohost.draw();
    drawTitle();
    if (!apply(info)) return;
    // The video first: chat history and the websocket (each checking the
    // password again) follow once it plays, or after a moment.
    let started = false;
    const rest = async () => {
      if (started || left) return;
      started = true;
      video.removeEventListener('playing', rest);
      // History before joining, so that no comment shows twice.
      await loadComments();
      if (!left) socket.start();
    };
    video.addEventListener('playing', rest);
    setTimeout(rest, info.status ? 1500 : 0);
  }

  function askPassword(message) {
    setStage('password', t('room.hasPassword'));
    const pw = h('input', { type: 'password', id: 'room-password-input', placeholder: t('room.roomPassword'), autocomplete: 'off', required: true });
    const err = h('p', { class: 'form-error', id: 'room-password-error', role: 'alert' }, message);
    dialog((close, dismiss) => {
      const form = h('form', { class: 'form', id: 'room-password-form' },
        h('h2', {}, icon('lock'), ' ', t('room.enterPassword')),
        h('label', { class: 'field' }, h('span', {}, t('room.password')), pw),
        err,
        h('div', { class: 'row end' },
          h('button', { type: 'button', class: 'btn btn-ghost', onclick: dismiss }, t('room.cancel')),
          h('button', { type: 'submit', class: 'btn btn-primary', id: 'room-password-submit' }, t('room.enter')),
        ),
      );
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        if (!pw.value) {
          err.textContent = t('room.typePassword');
          return;
        }
        close();
        setStage('loading', t('room.checkingPassword'));
        enter(pw.value);
      });
      return form;
    }, { label: t('room.roomPassword'), onClose: () => go('/rooms') });
  }

  // apply shows the room as read: playing, waiting, or ended. It returns
  // false when the room has ended.
  function apply(d) {
    clearTimeout(pollTimer);
    drawTitle();
    if (d.room_status === 3) {
      ended();
      return false;
    }
    if (d.status && d.play && d.play.flv) {
      const q = quality.pick(d.play); // the quality menu's URLs
      if (mode === 'webrtc' && !fallback && !native && q.whep && canWebRTC()) {
        // Low latency first, on phones too (iPhone Safari has WebRTC).
        setStage('loading');
        performance.mark('mofang:play');
        player.playWHEP(q.whep);
      } else if ((native || !canPlayFLV()) && d.play.hls && canPlayHLS(video)) {
        // No Media Source Extensions (iPhone Safari): the browser's own
        // HLS player, on the Low-Latency HLS output.
        setStage('loading');
        performance.mark('mofang:play');
        player.playNative(q.hls);
      } else if (!canPlayFLV()) {
        setStage('unsupported', t('room.noMSE'));
      } else {
        setStage('loading');
        performance.mark('mofang:play');
        player.play(q.flv);
      }
      drawMode();
      if (!joined && socket.open) join();
    } else {
      player.destroyPlayer();
      unmute.hidden = true;
      native = false;
      fallback = ''; // the next live may be encoded otherwise
      drawMode();
      const who = nickname(d.user);
      setStage('offline', d.room_status === 2 ? t('room.paused', { who }) : t('room.notLive', { who }));
      poll(POLL_OFFLINE);
    }
    return true;
  }

  // drawMode shows the playback mode: the toggle names the mode in use
  // and offers the other; the note says why WebRTC is not used; the
  // latency pill shows while WebRTC plays.
  function drawMode() {
    const webrtc = player.webrtc;
    page.dataset.mode = player.active ? (webrtc ? 'webrtc' : 'flv') : '';
    const want = mode === 'webrtc' && !fallback;
    modeBtn.textContent = mode === 'webrtc' ? t('room.modeWebRTC') : t('room.modeFLV');
    modeBtn.setAttribute('aria-pressed', String(mode === 'webrtc'));
    modeBtn.title = mode === 'webrtc' ? t('room.toFLV') : t('room.toWebRTC');
    modeBtn.dataset.mode = mode;
    modeNote.textContent = mode === 'webrtc' && fallback ? t('room.fallback', { why: fallback }) : '';
    modeNote.title = modeNote.textContent;
    modeNote.hidden = !modeNote.textContent;
    if (!want || !webrtc) latencyPill.hidden = true;
    clearInterval(latencyTimer);
    latencyTimer = webrtc ? setInterval(measure, 1000) : null;
  }

  async function measure() {
    const s = await player.latency();
    latencyPill.hidden = s === null || !player.webrtc;
    if (s !== null) latencyPill.textContent = t('room.latency', { ms: Math.round(s * 1000) });
  }

  function toggleMode() {
    mode = mode === 'webrtc' ? 'flv' : 'webrtc';
    fallback = '';
    try {
      localStorage.setItem(MODE_KEY, mode);
    } catch {
      // private mode: the choice lasts this page
    }
    if (info && info.status && !native && stage.dataset.state !== 'unsupported') apply(info);
    else drawMode();
    cohost.modeChanged();
  }

  // poll asks the API about the room again after ms.
  function poll(ms) {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(async () => {
      if (left) return;
      try {
        const r = await call('Live.stream.read', password === undefined ? { room_id: roomId } : { room_id: roomId, password });
        info = r.data;
        // A stream this browser cannot play: nothing to do while it
        // lasts; the publisher may come back in another codec.
        if (stage.dataset.state === 'unsupported' && info.status) poll(POLL_OFFLINE);
        else if (info.status || info.room_status === 3) apply(info);
        else if (stage.dataset.state !== 'offline') apply(info);
        else poll(POLL_OFFLINE);
      } catch (e) {
        if (left || e.errno === Errno.LOGIN_AGAIN) return;
        if (e.errno === Errno.WRONG_ROOM_PASSWORD) {
          player.destroyPlayer();
          socket.stop();
          askPassword(t('room.passwordChanged'));
          return;
        }
        poll(POLL_OFFLINE);
      }
    }, ms);
  }

  function ended() {
    left = true;
    calls.lost(t('room.callEnded'));
    cohost.destroy();
    clearInterval(latencyTimer);
    player.destroyPlayer();
    socket.stop();
    clearTimeout(pollTimer);
    setJoined(false);
    banner('');
    setStage('ended', t('room.ended'), backButton());
  }

  function drawTitle() {
    if (!info) return;
    showCover(stageBox, info.cover);
    title.replaceChildren(
      avatar(info.user, 'sm'),
      h('div', {},
        h('p', { class: 'room-name', id: 'room-title' }, info.room_name),
        h('p', { class: 'room-owner' }, nickname(info.user), info.status ? h('span', { class: 'badge badge-live' }, t('room.live')) : null),
      ),
      follow.el,
    );
    follow.setHost(info.user);
  }

  async function join() {
    if (left || !info || !info.status) return;
    try {
      const r = await socket.call('Live.room.join', password === undefined ? { room_id: roomId } : { room_id: roomId, password });
      setJoined(true);
      mod.load();
      setOnline(r.data.online || [], r.data.viewers);
      setLikes(r.data.likes);
      cohost.sync(r.data.cohosts);
    } catch (e) {
      setJoined(false);
      switch (e.errno) {
        case Errno.NOT_LIVE:
          break; // the player's polling notices when it is live
        case Errno.ROOM_ENDED:
          ended();
          break;
        case Errno.WRONG_ROOM_PASSWORD:
          player.destroyPlayer();
          socket.stop();
          askPassword(t('room.passwordChanged'));
          break;
        case Errno.NETWORK:
        case Errno.LOGIN_AGAIN:
          break; // reconnecting or logging in
        default:
          toast(joinError(e) || e.message, 'error');
      }
    }
  }

  async function loadComments() {
    try {
      const r = await call('Live.comment.list', password === undefined ? { room_id: roomId, size: 30 } : { room_id: roomId, size: 30, password });
      const lines = (r.data.comments || []).slice().reverse().map((c) => commentLine(c.user, c.content, true, c.id));
      chat.prepend(...lines);
      scrollChat(true);
    } catch {
      // history is a nicety
    }
  }

  // Events of the room.
  function onEvent(ev) {
    switch (ev.type) {
      case 'online':
        setOnline(ev.online || [], ev.viewers);
        break;
      case 'join':
        online.set(ev.user.id, ev.user);
        drawOnline(ev.viewers);
        if (ev.user.id !== me.id) sysLine(t('room.joined', { who: nickname(ev.user) }), 'join');
        break;
      case 'leave':
        online.delete(ev.user.id);
        drawOnline(ev.viewers);
        if (ev.user.id !== me.id) sysLine(t('room.left', { who: nickname(ev.user) }), 'leave');
        break;
      case 'comment':
        addLine(commentLine(ev.user, ev.content, false, ev.id));
        danmaku.add(ev.user, ev.content, ev.user && ev.user.id === me.id, ev.id);
        break;
      case 'mod':
      case 'comment_delete':
        mod.onRoomEvent(ev);
        if (ev.type === 'comment_delete') danmaku.remove(ev.id);
        break;
      case 'reenter':
        if (mod.reenterText(ev)) {
          left = true; // nothing more here: no polling, no rejoining
          clearTimeout(pollTimer);
          setJoined(false);
          player.destroyPlayer();
          socket.stop();
          setStage('missing', mod.reenterText(ev), backButton());
        }
        break;
      case 'like':
        setLikes(ev.likes);
        hearts(Math.min(ev.count || 1, 6));
        likeLine(ev.user, ev.count || 1);
        break;
      case 'cohost':
        cohost.onRoomEvent(ev);
        break;
      case 'rank':
        rank.onEvent(ev);
        break;
      case 'gift':
        giftFx(ev);
        addLine(h('li', { class: 'line gift-line', dataset: { type: 'gift', user: nickname(ev.user) } },
          h('b', {}, nickname(ev.user)), ' ', t('room.sent'), ' ', giftImage(ev.gift, 'inline'), ` ${ev.gift.name} ×${ev.count}`));
        break;
    }
  }

  function setOnline(users, n) {
    online.clear();
    for (const u of users) online.set(u.id, u);
    drawOnline(n);
  }

  function drawOnline(n) {
    const count = n === undefined ? online.size : n;
    viewers.querySelector('b').textContent = formatCount(count);
    root.querySelector('#online-n').textContent = `(${online.size})`;
    drawMembers();
  }

  // drawMembers draws the online list, with each member's buttons.
  function drawMembers() {
    onlineList.replaceChildren(...[...online.values()].map((u) => {
      // A member's actions: call them; the host also invites to co-host.
      const actions = [calls && calls.button(u), cohost && cohost.inviteButton(u), mod && mod.memberButton(u)].filter(Boolean);
      return h('li', { dataset: { userId: u.id }, title: nickname(u) }, avatar(u, 'sm'), h('span', { class: 'online-name' }, nickname(u)),
        info && info.user && u.id === info.user.id ? h('span', { class: 'badge badge-host' }, t('room.host')) : null,
        actions.length ? h('span', { class: 'online-actions' }, ...actions) : null);
    }));
    if (cohost) cohost.drawBox(); // "Request to co-host" while the host is here
  }

  function setLikes(n) {
    likes = Number(n) || 0;
    likeTotal.querySelector('b').textContent = formatCount(likes);
  }

  function commentLine(user, content, old = false, id = 0) {
    const li = h('li', { class: 'line comment' + (old ? ' old' : '') + (user && user.id === me.id ? ' mine' : ''), dataset: { type: 'comment', user: nickname(user), userId: user ? user.id : 0, ...(id ? { commentId: id } : {}) } },
      h('b', {}, nickname(user)), ' ', h('span', { class: 'content' }, content));
    if (id && mod) mod.decorate(li);
    return li;
  }

  function sysLine(text, type) {
    addLine(h('li', { class: 'line sys', dataset: { type } }, text));
  }

  // likeLine counts a user's likes on one line while nothing else came.
  function likeLine(user, count) {
    const last = chat.lastElementChild;
    if (last && last.dataset.type === 'like' && last.dataset.userId === String(user.id)) {
      const n = Number(last.dataset.count) + count;
      last.dataset.count = n;
      last.querySelector('.n').textContent = n > 1 ? ` ×${n}` : '';
      return;
    }
    addLine(h('li', { class: 'line like-line', dataset: { type: 'like', userId: user.id, user: nickname(user), count } },
      h('b', {}, nickname(user)), ' ', t('room.likedThis'), ' ', icon('heart', 'red'), h('span', { class: 'n' }, count > 1 ? ` ×${count}` : '')));
  }

  function addLine(li) {
    const stick = chat.scrollHeight - chat.scrollTop - chat.clientHeight < 40;
    chat.append(li);
    while (chat.children.length > MAX_CHAT) chat.firstElementChild.remove();
    scrollChat(stick);
  }

  function scrollChat(force) {
    if (force) chat.scrollTop = chat.scrollHeight;
  }

  // Actions.
  async function sendComment(e) {
    e.preventDefault();
    const content = input.value.trim();
    if (!content) return;
    if (!joined) {
      toast(t('room.notInChat'), 'warn');
      return;
    }
    sendBtn.disabled = true;
    try {
      await socket.call('Live.comment', { room_id: roomId, content });
      input.value = '';
    } catch (err) {
      toast(err.errno === Errno.SLOW_DOWN ? t('room.tooFast') : mod.commentError(err) || err.message, 'error');
    } finally {
      sendBtn.disabled = !joined;
      input.focus();
    }
  }

  async function like() {
    if (!joined) return;
    likeBtn.classList.remove('pop');
    void likeBtn.offsetWidth;
    likeBtn.classList.add('pop');
    try {
      const r = await socket.call('Live.like', { room_id: roomId });
      setLikes(r.data.likes);
    } catch (err) {
      if (err.errno !== Errno.SLOW_DOWN) toast(err.message, 'error');
    }
  }

  async function gifts() {
    if (!giftsCache) {
      const r = await call('Gift.list', {}, { auth: false });
      giftsCache = r.data.gifts || [];
    }
    return giftsCache;
  }

  async function openGifts() {
    if (!joined || isOwner) return;
    let list;
    try {
      list = await gifts();
    } catch (e) {
      toast(e.message, 'error');
      return;
    }
    let chosen = list[0];
    let count = 1;
    const balance = h('span', { id: 'gift-balance' }, formatCount(session.get()?.user?.coin));
    const err = h('p', { class: 'form-error', id: 'gift-error', role: 'alert' });
    const sendGift = h('button', { class: 'btn btn-primary', id: 'gift-send', type: 'button' }, t('room.send'));
    const grid = h('div', { class: 'gift-grid' }, list.map((g) => h('button', {
      type: 'button', class: 'gift-item' + (g === chosen ? ' selected' : ''), dataset: { giftId: g.id, giftName: g.name },
      onclick: (e) => {
        chosen = g;
        grid.querySelectorAll('.gift-item').forEach((b) => b.classList.toggle('selected', b === e.currentTarget));
      },
    }, giftImage(g, 'big'), h('span', { class: 'gift-name' }, g.name), h('span', { class: 'gift-price' }, icon('coin'), formatCoins(g.coin)))));
    const counts = h('div', { class: 'counts' }, [1, 5, 10].map((n) => h('button', {
      type: 'button', class: 'chip' + (n === 1 ? ' selected' : ''), onclick: (e) => {
        count = n;
        counts.querySelectorAll('.chip').forEach((b) => b.classList.toggle('selected', b === e.currentTarget));
      },
    }, `×${n}`)));

    const refreshBalance = async () => {
      try {
        const r = await call('User.info', {});
        session.setUser(r.data);
        balance.textContent = formatCount(r.data.coin);
      } catch {
        // shown when sending
      }
    };
    const recharge = async () => {
      err.textContent = '';
      try {
        const r = await call('User.coin.recharge', { amount: 100 });
        session.setUser({ coin: r.data.coin });
        balance.textContent = formatCount(r.data.coin);
        toast(t('room.coinsAdded'), 'ok');
      } catch (e) {
        err.textContent = e.errno === Errno.NOT_YOURS ? t('room.rechargeOff') : e.message;
      }
    };
    refreshBalance();

    dialog((close) => {
      sendGift.addEventListener('click', async () => {
        err.textContent = '';
        sendGift.disabled = true;
        try {
          const r = await socket.call('Live.gift', { room_id: roomId, gift_id: chosen.id, count });
          session.setUser({ coin: r.data.balance });
          close();
        } catch (e) {
          err.textContent = e.errno === Errno.NO_COINS ? t('room.noCoins') : e.message;
        } finally {
          sendGift.disabled = false;
        }
      });
      return h('div', { class: 'gift-sheet', id: 'gift-sheet' },
        h('h2', {}, t('room.sendGift')),
        grid,
        counts,
        h('div', { class: 'row between' },
          h('span', { class: 'coins' }, icon('coin'), balance, ' ', t('room.coins')),
          h('button', { type: 'button', class: 'btn btn-ghost', id: 'recharge', onclick: recharge }, t('room.recharge100')),
        ),
        err,
        h('div', { class: 'row end' }, h('button', { type: 'button', class: 'btn btn-ghost', onclick: close }, t('room.close')), sendGift),
      );
    }, { label: t('room.gifts') });
  }

  // Animations.
  function hearts(n) {
    for (let i = 0; i < n; i++) {
      const el = icon('heart', 'heart-fx');
      el.style.left = `${Math.round(Math.random() * 40)}px`;
      el.style.color = `hsl(${330 + Math.round(Math.random() * 50)}, 95%, 62%)`;
      el.style.animationDelay = `${i * 120}ms`;
      el.addEventListener('animationend', () => el.remove());
      heartLayer.append(el);
    }
  }

  function giftFx(ev) {
    while (giftLayer.children.length >= 3) giftLayer.firstElementChild.remove();
    const fx = h('div', { class: 'gift-fx', dataset: { user: nickname(ev.user), gift: ev.gift.name } },
      avatar(ev.user, 'sm'),
      h('div', { class: 'gift-fx-text' }, h('b', {}, nickname(ev.user)), h('span', {}, t('room.sentGift', { gift: ev.gift.name }))),
      giftImage(ev.gift, 'fx'),
      h('span', { class: 'gift-fx-count' }, `×${ev.count}`),
    );
    fx.addEventListener('animationend', (e) => {
      if (e.target === fx) fx.remove();
    });
    giftLayer.append(fx);
  }

  function giftImage(g, cls) {
    const img = h('img', { class: `gift-img gift-img-${cls}`, src: g.image, alt: '' });
    img.addEventListener('error', () => img.replaceWith(icon('gift', `gift-img gift-img-${cls}`)), { once: true });
    return img;
  }

  const onOffline = () => banner(t('room.offline'), 'warn');
  window.addEventListener('offline', onOffline);

  setStage('loading', t('room.entering'));
  enter(undefined);

  return () => {
    left = true;
    rank.stop();
    clearTimeout(pollTimer);
    clearInterval(latencyTimer);
    window.removeEventListener('offline', onOffline);
    document.removeEventListener('fullscreenchange', layout);
    document.removeEventListener('webkitfullscreenchange', layout);
    landscape.removeEventListener('change', layout);
    video.removeEventListener('resize', onResize);
    if (fullscreenElement() === page) exitFullscreen();
    player.destroy();
    danmaku.destroy();
    calls.lost();
    cohost.destroy();
    // Closing the socket leaves the room (Live.room.leave is for leaving
    // one room while staying in others).
    socket.stop();
    banner('');
    document.querySelectorAll('.backdrop').forEach((b) => b.remove());
  };
}
