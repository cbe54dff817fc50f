// LivePlayer plays a room's HTTP-FLV stream (play.flv from
// Live.stream.read) in a <video> through mpegts.js, tuned for low latency:
// no stash buffer, no lazy loading, and catching up when it falls behind.
// When the stream ends or stalls (the publisher went away) it reports
// 'lost', and its owner asks the API whether the room is live again and
// calls play() with a fresh URL.
//
// The player opens the stream itself and reads its first tags before
// mpegts.js sees them (then hands it the same connection): a video codec
// that the browser's Media Source Extensions cannot decode (H.265 in most
// browsers but Safari and Edge) is reported as 'unsupported', with the
// codec, before anything reaches them. Its owner then plays the room's
// HLS with the browser's own player where that decodes the codec, or says
// plainly that this browser cannot play it.

import mpegts from 'mpegts.js';
import { flvVideoCodec } from './flvcodec.js';
import { latency, playWHEP, whepReason } from './webrtc.js';
import { t } from './i18n/index.js';

const STALL_AFTER = 5000; // ms without progress while live: treat as lost
const PEEK_BYTES = 1 << 20; // read at most this much for the codec
const WHEP_CONNECT = 5000; // ms for a WHEP session to connect before falling back
const WHEP_PICTURE = 8000; // ... and then to show a picture

export function canPlayFLV() {
  return mpegts.isSupported() && mpegts.getFeatureList().mseLivePlayback;
}

// canPlayHLS reports whether the browser plays HLS by itself (Safari,
// iPhones): the fallback where Media Source Extensions are missing.
export function canPlayHLS(video) {
  return video.canPlayType('application/vnd.apple.mpegurl') !== '';
}

// mseCanDecode reports whether Media Source Extensions take a video codec
// (an RFC 6381 string such as 'hvc1.1.6.L93.B0').
export function mseCanDecode(codec) {
  return !!window.MediaSource && MediaSource.isTypeSupported(`video/mp4; codecs="${codec}"`);
}

// nativeCanDecode reports whether the browser's own player decodes it.
export function nativeCanDecode(video, codec) {
  return video.canPlayType(`video/mp4; codecs="${codec}"`) !== '';
}

// codecName names a codec string for people: 'hvc1.1.6.L93.B0' is H.265.
export function codecName(codec) {
  const names = { hvc1: 'H.265', hev1: 'H.265', avc1: 'H.264', avc3: 'H.264', av01: 'AV1', vp09: 'VP9' };
  return names[String(codec).slice(0, 4)] || String(codec);
}

// openedLoader is an mpegts.js loader class that goes on with a stream
// already opened and partly read (chunks), instead of opening its URL.
function openedLoader(reader, chunks) {
  return class OpenedLoader extends mpegts.BaseLoader {
    static isSupported() {
      return true;
    }

    constructor() {
      super('mofang-opened-loader');
      this._needStash = true;
      this.received = 0;
      this.stopped = false;
    }

    open(dataSource, range) {
      this.from = (range && range.from) || 0;
      this._status = mpegts.LoaderStatus.kBuffering;
      if (!reader) {
        // The stream can be read once: a new request is a new play().
        queueMicrotask(() => this.failed('the stream was already read'));
        return;
      }
      const r = reader;
      reader = null;
      (async () => {
        await null; // deliver after open() returns, as fetch would
        try {
          for (const c of chunks) {
            if (this.stopped) return;
            this.deliver(c);
          }
          chunks = [];
          for (;;) {
            const { value, done } = await r.read();
            if (this.stopped) return;
            if (done) {
              this._status = mpegts.LoaderStatus.kComplete;
              if (this._onComplete) this._onComplete(this.from, this.from + this.received - 1);
              return;
            }
            this.deliver(value);
          }
        } catch (e) {
          if (!this.stopped) this.failed(e && e.message);
        }
      })();
      this.cancel = () => r.cancel().catch(() => {});
    }

    deliver(u8) {
      const chunk = u8.byteOffset === 0 && u8.byteLength === u8.buffer.byteLength ? u8.buffer : u8.slice().buffer;
      const start = this.from + this.received;
      this.received += chunk.byteLength;
      if (this._onDataArrival) this._onDataArrival(chunk, start, this.received);
    }

    failed(msg) {
      this._status = mpegts.LoaderStatus.kError;
      if (this._onError) this._onError(mpegts.LoaderErrors.EXCEPTION, { code: -1, msg: msg || 'read error' });
    }

    abort() {
      this.stopped = true;
      if (this.cancel) this.cancel();
      this._status = mpegts.LoaderStatus.kComplete;
    }

    destroy() {
      if (!this.stopped) this.abort();
      super.destroy();
    }
  };
}

// frames is how many video frames the element has shown (or -1).
function frames(video) {
  if (typeof video.getVideoPlaybackQuality === 'function') return video.getVideoPlaybackQuality().totalVideoFrames;
  return typeof video.webkitDecodedFrameCount === 'number' ? video.webkitDecodedFrameCount : video.currentTime;
}

export class LivePlayer {
  // onState(state, codec): 'loading', 'playing', 'muted' (playing without
  // sound until the user taps), 'lost' (stream ended or stalled),
  // 'unsupported' (codec: the stream's video codec, which Media Source
  // Extensions cannot decode), 'webrtc-failed' (reason: one line for
  // people; WHEP refused or did not connect, so nothing played).
  constructor(video, onState) {
    this.video = video;
    this.onState = onState || (() => {});
    this.player = null; // mpegts.js's, or the native stand-in
    this.opening = null; // the AbortController of a stream being opened
    this.url = '';
    this.watchdog = null;
    this.lastTime = -1;
    this.lastProgress = 0;
    this.onPlaying = () => {
      this.onState(this.video.muted ? 'muted' : 'playing');
    };
    video.addEventListener('playing', this.onPlaying);
  }

  get active() {
    return !!(this.player || this.opening);
  }

  play(url) {
    this.destroyPlayer();
    this.url = url;
    this.onState('loading');
    const opening = new AbortController();
    this.opening = opening;
    this.startWatchdog();
    this.open(url, opening).catch((e) => {
      if (this.opening !== opening || opening.signal.aborted) return;
      this.lost();
    });
  }

  // open reads the stream until its video codec is known, then plays it
  // with mpegts.js on the same connection, or reports it unsupported.
  async open(url, opening) {
    const res = await fetch(url, { signal: opening.signal, cache: 'no-store', referrerPolicy: 'no-referrer-when-downgrade' });
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
    const reader = res.body.getReader();
    const chunks = [];
    let buf = new Uint8Array(0);
    let codec = null;
    while (codec === null && buf.length < PEEK_BYTES) {
      const { value, done } = await reader.read();
      if (this.opening !== opening) {
        reader.cancel().catch(() => {});
        return;
      }
      if (done) throw new Error('the stream ended');
      chunks.push(value);
      const b = new Uint8Array(buf.length + value.length);
      b.set(buf);
      b.set(value, buf.length);
      buf = b;
      codec = flvVideoCodec(buf);
    }
    this.opening = null;
    if (codec && !mseCanDecode(codec)) {
      reader.cancel().catch(() => {});
      this.unsupported(codec);
      return;
    }
    this.start(url, reader, chunks);
  }

  start(url, reader, chunks) {
    const p = mpegts.createPlayer(
      { type: 'flv', isLive: true, url, hasAudio: true, hasVideo: true },
      {
        enableWorker: false,
        enableStashBuffer: false,
        stashInitialSize: 64 * 1024,
        lazyLoad: false,
        autoCleanupSourceBuffer: true,
        liveBufferLatencyChasing: true,
        liveBufferLatencyMaxLatency: 2.0,
        liveBufferLatencyMinRemain: 0.3,
        liveSync: true,
        liveSyncMaxLatency: 1.2,
        liveSyncTargetLatency: 0.6,
        liveSyncPlaybackRate: 1.2,
        customLoader: openedLoader(reader, chunks),
      },
    );
    this.player = p;
    // mpegts.js calls these from inside its own pipeline, with more of
    // its callbacks queued behind: tearing it down there makes those use
    // its destroyed emitters (TypeError: Cannot read properties of null
    // (reading 'emit')). So the player ends on a task of its own, after
    // they ran; events of a player that is ending are ignored.
    const end = () => {
      if (this.player !== p || p.mofangEnding) return;
      p.mofangEnding = true;
      setTimeout(() => {
        if (this.player !== p) return;
        // A codec the stream's start did not show (it changed).
        const codec = p.mediaInfo && p.mediaInfo.videoCodec;
        if (codec && !mseCanDecode(codec)) this.unsupported(codec);
        else this.lost();
      }, 0);
    };
    p.on(mpegts.Events.ERROR, end);
    p.on(mpegts.Events.LOADING_COMPLETE, end);
    p.attachMediaElement(this.video);
    p.load();
    this.begin();
  }

  // playNative plays a URL the browser handles itself (Low-Latency HLS
  // on Safari), with the same states and stall watchdog.
  playNative(url) {
    this.destroyPlayer();
    this.url = url;
    this.onState('loading');
    const v = this.video;
    v.src = url;
    this.player = {
      pause: () => v.pause(),
      unload: () => { v.removeAttribute('src'); v.load(); },
      detachMediaElement: () => {},
      destroy: () => {},
    };
    v.onerror = () => this.lost();
    this.begin();
    this.startWatchdog();
  }

  // playWHEP plays the room over WebRTC (play.whep): same states and
  // stall watchdog; a session that is refused, does not connect within
  // WHEP_CONNECT or never shows a picture reports 'webrtc-failed' with
  // the reason, and one that breaks after playing reports 'lost'.
  playWHEP(url) {
    this.destroyPlayer();
    this.url = url;
    this.onState('loading');
    const v = this.video;
    const stand = { whep: true, session: null, played: false, ended: false };
    const fail = (reason) => {
      if (this.player !== stand || stand.ended) return;
      if (stand.played) this.lost();
      else {
        this.destroyPlayer();
        this.onState('webrtc-failed', reason);
      }
    };
    stand.fail = fail;
    stand.pause = () => v.pause();
    stand.unload = () => {
      stand.ended = true;
      clearTimeout(stand.timer);
      if (stand.session) stand.session.close();
      v.srcObject = null;
    };
    stand.detachMediaElement = () => {};
    stand.destroy = () => {};
    stand.onPlaying = () => {
      stand.played = true;
      clearTimeout(stand.timer);
    };
    this.player = stand;
    v.addEventListener('playing', stand.onPlaying, { once: true });
    stand.timer = setTimeout(() => fail(t('player.whepTimeout')), WHEP_CONNECT);
    playWHEP(url, (stream) => {
      if (this.player !== stand) return;
      if (v.srcObject !== stream) {
        v.srcObject = stream;
        this.begin();
      }
    }, (state) => {
      if (this.player !== stand) return;
      if (state === 'connected' && !stand.played) {
        // Connected: the picture starts at the next key frame the server has.
        clearTimeout(stand.timer);
        stand.timer = setTimeout(() => fail(t('player.noVideo')), WHEP_PICTURE);
      }
      if (state === 'failed') fail(t('player.failed'));
    }).then((session) => {
      if (this.player !== stand || stand.ended) {
        session.close();
        return;
      }
      stand.session = session;
    }, (e) => fail(whepReason(e)));
    this.startWatchdog();
  }

  // latency is the WebRTC latency estimate in seconds (see webrtc.js),
  // or null when not playing over WebRTC.
  async latency() {
    const p = this.player;
    if (!p || !p.session || !p.played) return null;
    try {
      return await latency(p.session.pc);
    } catch {
      return null;
    }
  }

  get webrtc() {
    return !!(this.player && this.player.whep);
  }

  startWatchdog() {
    this.lastTime = -1;
    this.lastProgress = Date.now();
    clearInterval(this.watchdog);
    this.watchdog = setInterval(() => this.check(), 1000);
  }

  // begin plays with sound when the browser allows it (the user tapped to
  // get here), else muted, telling the owner to offer "tap to unmute".
  async begin() {
    const v = this.video;
    try {
      await v.play();
    } catch (e) {
      if (e && e.name === 'NotAllowedError') {
        v.muted = true;
        try {
          await v.play();
        } catch {
          // Nothing to play yet; 'playing' fires when it does.
        }
      }
    }
  }

  unmute() {
    this.video.muted = false;
    this.video.play().catch(() => {});
    this.onState('playing');
  }

  // check notices a stream that stopped moving without an error.
  check() {
    // A MediaStream's currentTime runs on with no frames: over WebRTC,
    // progress is frames shown.
    const pos = this.player && this.player.whep ? frames(this.video) : this.video.currentTime;
    if (pos !== this.lastTime) {
      this.lastTime = pos;
      this.lastProgress = Date.now();
      return;
    }
    if ((this.opening || !this.video.paused) && Date.now() - this.lastProgress > STALL_AFTER) {
      if (this.player && this.player.fail) this.player.fail(t('player.noVideo'));
      else this.lost();
    } else if (this.video.paused && Date.now() - this.lastProgress > STALL_AFTER) {
      // Paused by the browser (e.g. autoplay refused): try again.
      this.begin();
      this.lastProgress = Date.now();
    }
  }

  lost() {
    if (!this.active) return;
    this.destroyPlayer();
    this.onState('lost');
  }

  unsupported(codec) {
    this.destroyPlayer();
    this.onState('unsupported', codec);
  }

  destroyPlayer() {
    clearInterval(this.watchdog);
    this.watchdog = null;
    if (this.opening) {
      this.opening.abort();
      this.opening = null;
    }
    if (this.player) {
      const p = this.player;
      this.player = null;
      try {
        p.pause();
        p.unload();
        p.detachMediaElement();
        p.destroy();
      } catch {
        // already torn down
      }
    }
  }

  destroy() {
    this.destroyPlayer();
    this.video.removeEventListener('playing', this.onPlaying);
  }
}
