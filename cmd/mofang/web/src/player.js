// LivePlayer plays a room's HTTP-FLV stream (play.flv from
// Live.stream.read) in a <video> through mpegts.js, tuned for low latency:
// no stash buffer, no lazy loading, and catching up when it falls behind.
// When the stream ends or stalls (the publisher went away) it reports
// 'lost', and its owner asks the API whether the room is live again and
// calls play() with a fresh URL.

import mpegts from 'mpegts.js';

const STALL_AFTER = 5000; // ms without progress while live: treat as lost

export function canPlayFLV() {
  return mpegts.isSupported() && mpegts.getFeatureList().mseLivePlayback;
}

// canPlayHLS reports whether the browser plays HLS by itself (Safari,
// iPhones): the fallback where Media Source Extensions are missing.
export function canPlayHLS(video) {
  return video.canPlayType('application/vnd.apple.mpegurl') !== '';
}

export class LivePlayer {
  // onState(state): 'loading', 'playing', 'muted' (playing without sound
  // until the user taps), 'lost' (stream ended or stalled).
  constructor(video, onState) {
    this.video = video;
    this.onState = onState || (() => {});
    this.player = null;
    this.url = '';
    this.watchdog = null;
    this.lastTime = -1;
    this.lastProgress = 0;
    this.onPlaying = () => {
      this.onState(this.video.muted ? 'muted' : 'playing');
    };
    video.addEventListener('playing', this.onPlaying);
  }

  play(url) {
    this.destroyPlayer();
    this.url = url;
    this.onState('loading');
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
      },
    );
    this.player = p;
    p.on(mpegts.Events.ERROR, () => this.lost());
    p.on(mpegts.Events.LOADING_COMPLETE, () => this.lost());
    p.attachMediaElement(this.video);
    p.load();
    this.start();
    this.lastTime = -1;
    this.lastProgress = Date.now();
    clearInterval(this.watchdog);
    this.watchdog = setInterval(() => this.check(), 1000);
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
    this.start();
    this.lastTime = -1;
    this.lastProgress = Date.now();
    clearInterval(this.watchdog);
    this.watchdog = setInterval(() => this.check(), 1000);
  }

  // start plays with sound when the browser allows it (the user tapped to
  // get here), else muted, telling the owner to offer "tap to unmute".
  async start() {
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
    const t = this.video.currentTime;
    if (t !== this.lastTime) {
      this.lastTime = t;
      this.lastProgress = Date.now();
      return;
    }
    if (!this.video.paused && Date.now() - this.lastProgress > STALL_AFTER) {
      this.lost();
    } else if (this.video.paused && Date.now() - this.lastProgress > STALL_AFTER) {
      // Paused by the browser (e.g. autoplay refused): try again.
      this.start();
      this.lastProgress = Date.now();
    }
  }

  lost() {
    if (!this.player) return;
    this.destroyPlayer();
    this.onState('lost');
  }

  destroyPlayer() {
    clearInterval(this.watchdog);
    this.watchdog = null;
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
