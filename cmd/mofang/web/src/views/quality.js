// The quality menu of the live room: "Auto", the source ("Source") and
// each rendition of the quality ladder (Live.stream.read's
// play.renditions, e.g. 480p, 360p), shown when the live has renditions.
// pick(play) gives the URLs to play for the viewer's choice, remembered
// in localStorage. Auto takes the smallest rendition at least as tall as
// the video on screen (in device pixels), then steps down while its
// approximate bitrate is over what the browser says the network carries
// (navigator.connection.downlink, where there is one); with the
// browser's own HLS player Auto plays the multivariant playlist
// (play.hls_master), whose player picks by bandwidth itself.

import { h } from '../ui.js';
import { t } from '../i18n/index.js';

const KEY = 'mofang.quality'; // 'auto', 'source' or a rendition's name

// kbps is roughly the server's bitrate of a rendition of height h.
const kbps = (height) => Math.max(150, Math.floor((height * height) / 210));

export class Quality {
  // video is the room's <video>; onChange is called when the viewer
  // picks another quality.
  constructor({ video, onChange }) {
    this.video = video;
    this.renditions = [];
    this.source = null; // the live's own height, when known
    let saved = 'auto';
    try {
      saved = localStorage.getItem(KEY) || 'auto';
    } catch {
      // private mode
    }
    this.choice = saved;
    this.select = h('select', { class: 'quality glass', id: 'quality', 'aria-label': t('quality.quality'), title: t('quality.quality'), hidden: true });
    this.select.addEventListener('change', () => {
      this.choice = this.select.value;
      try {
        localStorage.setItem(KEY, this.choice);
      } catch {
        // private mode: the choice lasts this page
      }
      onChange();
    });
  }

  // pick returns {flv, whep, hls, name} to play for play (Live.stream.read's
  // play URLs), and redraws the menu.
  pick(play) {
    this.renditions = (play && play.renditions) || [];
    this.draw();
    const src = { flv: play.flv, whep: play.whep, hls: play.hls, name: 'source' };
    if (!this.renditions.length || this.choice === 'source') return src;
    if (this.choice !== 'auto') {
      const r = this.renditions.find((x) => x.name === this.choice);
      return r ? { flv: r.flv, whep: r.whep, hls: r.hls, name: r.name } : src;
    }
    const r = this.auto();
    if (!r) return { ...src, hls: play.hls_master || play.hls, name: 'auto' };
    return { flv: r.flv, whep: r.whep, hls: play.hls_master || r.hls, name: r.name };
  }

  // auto is the rendition for the player's size and bandwidth, or null
  // for the source.
  auto() {
    const rs = [...this.renditions].sort((a, b) => a.height - b.height);
    const need = (this.video.clientHeight || 360) * (window.devicePixelRatio || 1);
    let pick = rs.find((r) => r.height >= need) || null; // null: the source
    const down = navigator.connection && navigator.connection.downlink; // Mbit/s
    if (down > 0) {
      const budget = down * 800; // kbit/s, with some room
      // the source's bitrate is not known: guess it above the top rendition
      const rate = pick ? kbps(pick.height) : kbps(rs[rs.length - 1].height * 1.5);
      if (rate > budget) pick = [...rs].reverse().find((r) => kbps(r.height) <= budget) || rs[0];
    }
    return pick;
  }

  draw() {
    const opts = [['auto', t('quality.auto')], ['source', t('quality.source')], ...this.renditions.map((r) => [r.name, r.name])];
    const key = opts.map((o) => o[0]).join();
    if (this.select.dataset.key !== key) {
      this.select.dataset.key = key;
      this.select.replaceChildren(...opts.map(([v, label]) => h('option', { value: v }, label)));
    }
    if (!opts.some((o) => o[0] === this.choice)) this.choice = 'auto';
    this.select.value = this.choice;
    this.select.hidden = this.renditions.length === 0;
  }
}
