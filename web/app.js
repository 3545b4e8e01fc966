// Live trending hashtags page. Plain ES2020, no dependencies, no build step.
//
// Layout of this file:
//   1. config          constants shared by everything below
//   2. data layer      parseTrends() / fetchLanguages() / fetchHashtag() / fetchSuggestions():
//                      validation, never the DOM
//   3. formatting      numbers, times, window labels
//   4. rendering       render*() / drawSeries(): DOM only, never fetch; API strings go in via textContent
//   5. controller      state (window, limit, sort, language, open tag), the live stream
//                      (EventSource + back-off), the language list, URL sync, event wiring

// The colour theme chosen with the toggle, applied before the first paint: this file loads
// synchronously in <head>, before the body exists; everything else waits for the DOM.
(() => {
  try {
    const theme = localStorage.getItem('theme');
    if (theme === 'light' || theme === 'dark') document.documentElement.dataset.theme = theme;
  } catch (_) {
    // No storage (e.g. some private modes): the system's preference applies.
  }
})();

(() => {
  'use strict';

  // ---------------------------------------------------------------------------------------------
  // 1. Config
  // ---------------------------------------------------------------------------------------------

  /** The windows the API knows, in display order. */
  const WINDOWS = [
    { id: '1m', label: '1 minute', long: 'Last minute' },
    { id: '5m', label: '5 minutes', long: 'Last 5 minutes' },
    { id: '15m', label: '15 minutes', long: 'Last 15 minutes' },
    { id: '1h', label: '1 hour', long: 'Last hour' },
    { id: '24h', label: '24 hours', long: 'Last 24 hours' },
    { id: 'all', label: 'All time', long: 'All time' },
  ];
  const WINDOW_IDS = WINDOWS.map((w) => w.id);
  const DEFAULT_WINDOW = '5m';
  const LIMITS = [5, 10, 20, 50, 100];
  const DEFAULT_LIMIT = 10;
  /** `trending`: by trend score, each row saying why; `count`: by posts (the API's default). */
  const SORTS = ['trending', 'count'];
  const DEFAULT_SORT = 'trending';
  /** A trend's status: text and a symbol, so that it never relies on colour alone. */
  const STATUSES = {
    rising: { label: 'rising', icon: '\u2191' },
    hot: { label: 'hot', icon: '\u25cf' },
    cooling: { label: 'cooling', icon: '\u2193' },
  };
  /** A language code as the API accepts it (`en`, `ja`, `und`): 1 to 8 lowercase letters. */
  const LANG_RE = /^[a-z]{1,8}$/;
  /** The language list is refreshed this often (its volumes move slowly). */
  const LANGUAGES_REFRESH_MS = 60000;
  const LANGUAGES_RETRY_MS = 5000;
  /** The two series of GET /hashtags/{tag}. */
  const RANGES = { '1h': 'the last hour', '24h': 'the last 24 hours' };
  const DEFAULT_RANGE = '1h';

  /** Own reconnect back-off, used when the browser gives up on the stream (e.g. a 503). */
  const RETRY_MIN_MS = 1000;
  const RETRY_MAX_MS = 15000;
  /** After this many failed attempts in a row the indicator says "offline" (still retrying). */
  const OFFLINE_AFTER = 4;
  const REQUEST_TIMEOUT_MS = 5000;
  /** The open details panel is refreshed with the stream, at most this often. */
  const DETAILS_REFRESH_MS = 1000;
  const SUGGEST_DELAY_MS = 150;
  /** Must match the longest transition in style.css (leave fade). */
  const LEAVE_MS = 400;

  /** API base, relative to the page so the UI also works behind a path prefix. */
  const API_BASE = new URL('api/v1/', document.baseURI);

  // ---------------------------------------------------------------------------------------------
  // 2. Data layer
  // ---------------------------------------------------------------------------------------------

  /** A failed API call. `status` is the HTTP status (0 for network/timeout/parse failures). */
  class ApiError extends Error {
    constructor(message, status = 0, code = '') {
      super(message);
      this.name = 'ApiError';
      this.status = status;
      this.code = code;
    }
  }

  /**
   * GET `path` (relative to API_BASE) and return the parsed JSON body.
   * Throws ApiError for network errors, timeouts, non-2xx statuses and malformed JSON.
   * An abort through `signal` rethrows the AbortError untouched so callers can ignore it.
   */
  async function getJson(path, signal) {
    const url = new URL(path, API_BASE);
    const ctrl = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ctrl.abort();
    }, REQUEST_TIMEOUT_MS);
    const onAbort = () => ctrl.abort();
    if (signal) {
      if (signal.aborted) ctrl.abort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
    try {
      let res;
      let text;
      try {
        res = await fetch(url, { signal: ctrl.signal, headers: { Accept: 'application/json' }, cache: 'no-store' });
        text = await res.text();
      } catch (err) {
        if (timedOut) throw new ApiError('request timed out');
        if (err && err.name === 'AbortError') throw err;
        throw new ApiError('network error');
      }
      let body;
      let parsed = true;
      try {
        body = JSON.parse(text);
      } catch (_) {
        parsed = false;
      }
      if (!res.ok) {
        const e = parsed && isObject(body) && isObject(body.error) ? body.error : null;
        const msg = e && typeof e.message === 'string' ? e.message : `HTTP ${res.status}`;
        const code = e && typeof e.code === 'string' ? e.code : '';
        throw new ApiError(msg, res.status, code);
      }
      if (!parsed) throw new ApiError('malformed JSON from the API', res.status);
      return body;
    } finally {
      clearTimeout(timer);
      if (signal) signal.removeEventListener('abort', onAbort);
    }
  }

  function isObject(v) {
    return v !== null && typeof v === 'object' && !Array.isArray(v);
  }

  function isCount(v) {
    return typeof v === 'number' && Number.isFinite(v) && v >= 0;
  }

  /** Accepts an RFC 3339 string; returns { raw, date } (date null if unparsable) or null. */
  function parseWatermark(v) {
    if (typeof v !== 'string' || v === '') return null;
    const date = new Date(v);
    return { raw: v, date: Number.isNaN(date.getTime()) ? null : date };
  }

  /**
   * Validate a trends body (GET /trends, or the data of a `trends` event), by count or trending
   * (`sort: "trending"`). Drops malformed entries and duplicate tags (the chart is keyed by
   * hashtag), keeps the server's order, and throws ApiError if the shape is unusable. Every
   * entry has `value` (what its bar's length shows: posts, or the trend score) and `trend`
   * (why it trends, or null by count).
   */
  function parseTrends(body) {
    if (!isObject(body) || !Array.isArray(body.trends)) {
      throw new ApiError('unexpected data from the API');
    }
    const sort = body.sort === 'trending' ? 'trending' : 'count';
    const seen = new Set();
    const trends = [];
    for (const item of body.trends) {
      if (!isObject(item)) continue;
      const { hashtag } = item;
      if (typeof hashtag !== 'string' || hashtag === '' || seen.has(hashtag)) continue;
      const trend = sort === 'trending' ? parseTrend(item) : null;
      if (sort === 'trending' ? !trend : !isCount(item.count)) continue;
      seen.add(hashtag);
      const rank = Number.isInteger(item.rank) && item.rank > 0 ? item.rank : trends.length + 1;
      // `display` is the most frequent original spelling; `hashtag` (normalized) is the identity.
      const display = typeof item.display === 'string' && item.display !== '' ? item.display : hashtag;
      const count = trend ? trend.posts : item.count;
      trends.push({ rank, hashtag, display, count, value: trend ? trend.score : count, trend });
    }
    return {
      window: typeof body.window === 'string' ? body.window : null,
      sort,
      lang: typeof body.lang === 'string' && LANG_RE.test(body.lang) ? body.lang : '',
      watermark: parseWatermark(body.watermark),
      trends,
    };
  }

  /** The explanation of one trending entry, or null when it is unusable. */
  function parseTrend(item) {
    const { authors, posts, score } = item;
    if (!isCount(authors) || !isCount(posts) || typeof score !== 'number' || !Number.isFinite(score)) return null;
    const expected = typeof item.expected === 'number' && Number.isFinite(item.expected) && item.expected > 0
      ? item.expected : 1;
    const startedAt = parseWatermark(item.started_at);
    const status = Object.prototype.hasOwnProperty.call(STATUSES, item.status) ? item.status : 'hot';
    const sparkline = Array.isArray(item.sparkline) ? item.sparkline.filter(isCount).slice(-48) : [];
    return { score: Math.max(0, score), authors, posts, expected, startedAt, status, sparkline };
  }

  /** GET /api/v1/languages → [{ code, posts1h, posts24h }], most posts first (the API's order). */
  async function fetchLanguages(signal) {
    const body = await getJson('languages', signal);
    if (!isObject(body) || !Array.isArray(body.languages)) throw new ApiError('unexpected response from the API');
    const seen = new Set();
    const out = [];
    for (const l of body.languages) {
      if (!isObject(l) || typeof l.code !== 'string' || !LANG_RE.test(l.code) || seen.has(l.code)) continue;
      seen.add(l.code);
      out.push({ code: l.code, posts1h: isCount(l.posts_1h) ? l.posts_1h : 0, posts24h: isCount(l.posts_24h) ? l.posts_24h : 0 });
    }
    return out;
  }

  /** One series of GET /hashtags/{tag}: { bucketSecs, points: [{ start: Date, count }] } or null. */
  function parseSeries(v) {
    if (!isObject(v) || !Array.isArray(v.points)) return null;
    const points = [];
    for (const p of v.points) {
      if (!isObject(p) || !isCount(p.count) || typeof p.start !== 'string') continue;
      const start = new Date(p.start);
      if (Number.isNaN(start.getTime())) continue;
      points.push({ start, count: p.count });
    }
    const bucketSecs = isCount(v.bucket_secs) && v.bucket_secs > 0 ? v.bucket_secs : null;
    return { bucketSecs, points };
  }

  /**
   * GET /api/v1/hashtags/{tag} → { hashtag, display, counts: {window: number|null}, series:
   * {'1h'|'24h': series|null}, watermark } or null when the API answers 404 (never seen).
   */
  async function fetchHashtag(tag, signal) {
    let body;
    try {
      body = await getJson(`hashtags/${encodeURIComponent(tag)}`, signal);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return null;
      throw err;
    }
    if (!isObject(body) || !isObject(body.counts)) throw new ApiError('unexpected response from the API');
    const counts = {};
    for (const id of WINDOW_IDS) counts[id] = isCount(body.counts[id]) ? body.counts[id] : null;
    const series = {};
    for (const range of Object.keys(RANGES)) series[range] = isObject(body.series) ? parseSeries(body.series[range]) : null;
    return {
      hashtag: typeof body.hashtag === 'string' && body.hashtag !== '' ? body.hashtag : tag,
      display: typeof body.display === 'string' && body.display !== '' ? body.display : null,
      counts,
      series,
      watermark: parseWatermark(body.watermark),
    };
  }

  /** Tags of all time starting with `prefix`, for the search box's suggestions. */
  async function fetchSuggestions(prefix, signal) {
    const q = new URLSearchParams({ window: 'all', limit: '8', prefix });
    return parseTrends(await getJson(`trends?${q}`, signal)).trends;
  }

  // ---------------------------------------------------------------------------------------------
  // 3. Formatting
  // ---------------------------------------------------------------------------------------------

  const numberFormat = new Intl.NumberFormat();
  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit', second: '2-digit' });
  const shortTimeFormat = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
  const dayTimeFormat = new Intl.DateTimeFormat(undefined, { weekday: 'short', hour: 'numeric', minute: '2-digit' });
  const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
    month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit', second: '2-digit',
  });

  const formatCount = (n) => numberFormat.format(n);
  const oneDecimalFormat = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const formatOneDecimal = (n) => oneDecimalFormat.format(n);

  const languageNames = (() => {
    try {
      return typeof Intl.DisplayNames === 'function' ? new Intl.DisplayNames(undefined, { type: 'language' }) : null;
    } catch (_) {
      return null;
    }
  })();

  /** A readable language name (`Japanese` for `ja`); the code itself when the browser has none. */
  function languageName(code) {
    if (code === 'und') return 'Unknown language';
    try {
      const name = languageNames ? languageNames.of(code) : '';
      if (name && name !== code) return name;
    } catch (_) {
      // A code Intl does not accept: show it as it is.
    }
    return code;
  }

  /** "10:01" today, "Thu 10:01" on another day, local time. */
  function formatSince(date) {
    return (sameDay(date, new Date()) ? shortTimeFormat : dayTimeFormat).format(date);
  }

  function sameDay(a, b) {
    return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
  }

  /** Local time; the date is added when it is not today. */
  function formatTime(date) {
    return (sameDay(date, new Date()) ? timeFormat : dateTimeFormat).format(date);
  }

  function formatDuration(secs) {
    if (secs % 3600 === 0) return secs === 3600 ? 'hour' : `${secs / 3600} hours`;
    if (secs % 60 === 0) return secs === 60 ? 'minute' : `${secs / 60} minutes`;
    return secs === 1 ? 'second' : `${secs} seconds`;
  }

  const windowInfo = (id) => WINDOWS.find((w) => w.id === id) || WINDOWS[1];

  /** What the user typed → the tag to ask for: trimmed, without one leading # or ＃. */
  function cleanQuery(text) {
    return text.trim().replace(/^[#\uFF03]/, '').trim();
  }

  // ---------------------------------------------------------------------------------------------
  // 4. Rendering
  // ---------------------------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);
  /** The page's elements, looked up by lookUp() once the DOM is there. */
  let el = null;
  const lookUp = () => ({
    root: document.documentElement,
    status: $('connection'),
    statusText: document.querySelector('#connection .status-text'),
    theme: $('theme-toggle'),
    windowLabel: $('window-label'),
    watermark: $('watermark'),
    limitLabel: $('limit-label'),
    sortLabel: $('sort-label'),
    sortButtons: Array.from(document.querySelectorAll('.sort-button')),
    select: $('window-select'),
    langSelect: $('lang-select'),
    limitSelect: $('limit-select'),
    chartNote: $('chart-note'),
    emptyTitle: $('empty-title'),
    emptyText: $('empty-text'),
    chart: $('chart'),
    bars: $('bars'),
    loading: $('loading'),
    empty: $('empty'),
    searchForm: $('search-form'),
    searchInput: $('search-input'),
    searchError: $('search-error'),
    suggestions: $('search-suggestions'),
    hint: $('details-hint'),
    details: $('details'),
    detailsHeading: $('details-heading'),
    detailsBody: $('details-body'),
    detailsCounts: $('details-counts'),
    detailsMessage: $('details-message'),
    detailsClose: $('details-close'),
    rangeButtons: Array.from(document.querySelectorAll('.range-button')),
    series: $('series'),
    seriesChart: $('series-chart'),
    seriesReadout: $('series-readout'),
  });

  const reducedMotion = window.matchMedia ? window.matchMedia('(prefers-reduced-motion: reduce)') : { matches: false };

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function setData(node, key, value) {
    if (value === null || value === undefined) {
      if (key in node.dataset) delete node.dataset[key];
    } else if (node.dataset[key] !== String(value)) {
      node.dataset[key] = String(value);
    }
  }

  function make(tag, className, attrs) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (attrs) for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    if (attrs) for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  }

  /**
   * Connection indicator: 'connecting' | 'live' | 'reconnecting' | 'offline'. The data shown is
   * marked stale unless live.
   */
  function renderStatus(status, detail) {
    const text = {
      connecting: 'connecting\u2026', live: 'live', reconnecting: 'reconnecting\u2026', offline: 'offline',
    }[status];
    setData(el.status, 'state', status);
    setText(el.statusText, text);
    const title = detail ? `${text} (${detail})` : text;
    if (el.status.title !== title) el.status.title = title;
  }

  function renderStale(stale) {
    setData(el.chart, 'stale', String(stale));
  }

  /** Subtitle: window label + "data as of <local time>" / "waiting for data…". */
  function renderSubtitle(windowId, watermark) {
    setText(el.windowLabel, windowInfo(windowId).long);
    const key = watermark ? watermark.raw : '';
    if (el.watermark.dataset.watermark === key && el.watermark.firstChild) return;
    el.watermark.dataset.watermark = key;
    if (!watermark) {
      el.watermark.textContent = 'waiting for data\u2026';
      return;
    }
    const time = make('time', '', { datetime: watermark.raw });
    time.textContent = watermark.date ? formatTime(watermark.date) : watermark.raw;
    if (watermark.date) time.title = watermark.date.toLocaleString();
    el.watermark.replaceChildren('data as of ', time);
  }

  /** hashtag -> row parts, for the bars currently shown (not the ones fading out). */
  const rows = new Map();

  function createRow(tag) {
    const li = make('li', 'bar-row');
    const button = make('button', 'bar', { type: 'button', 'data-testid': 'bar', 'aria-controls': 'details' });
    button.dataset.hashtag = tag;
    button.setAttribute('aria-expanded', 'false');
    const rank = make('span', 'bar-rank', { 'data-testid': 'rank', 'aria-hidden': 'true' });
    const track = make('span', 'bar-track', { 'aria-hidden': 'true' });
    const fill = make('span', 'bar-fill');
    const text = make('span', 'bar-text');
    const label = make('span', 'bar-label', { dir: 'auto', 'data-testid': 'hashtag' });
    // Why it trends (trending only): authors · ×expected · since.
    const why = make('span', 'bar-why', { 'data-testid': 'why' });
    const authors = make('span', 'why-authors', { 'data-testid': 'why-authors' });
    const ratio = make('span', 'why-ratio', { 'data-testid': 'why-ratio' });
    const since = make('span', 'why-since', { 'data-testid': 'why-since' });
    const dot = () => {
      const sep = make('span', 'why-sep');
      sep.textContent = ' \u00b7 ';
      return sep;
    };
    why.append(authors, dot(), ratio, dot(), since);
    text.append(label, why);
    track.append(fill, text);
    const spark = svg('svg', {
      class: 'spark', viewBox: `0 0 ${SPARK_W} ${SPARK_H}`, width: SPARK_W, height: SPARK_H,
      'aria-hidden': 'true', focusable: 'false', 'data-testid': 'sparkline', preserveAspectRatio: 'none',
    });
    const status = make('span', 'bar-status', { 'data-testid': 'status' });
    const statusIcon = make('span', 'status-icon');
    const statusText = make('span', 'status-text');
    status.append(statusIcon, statusText);
    // Trending only: the sparkline and the status, side by side (stacked on phones).
    const side = make('span', 'bar-side', { 'aria-hidden': 'true' });
    side.append(spark, status);
    const count = make('span', 'bar-count', { 'data-testid': 'count', 'aria-hidden': 'true' });
    button.append(rank, track, side, count);
    li.append(button);
    return {
      tag, li, button, rank, fill, label, why, authors, ratio, since, side, spark, status, statusIcon, statusText, count, width: 0,
    };
  }

  function setAria(node, name) {
    if (node.getAttribute('aria-label') !== name) node.setAttribute('aria-label', name);
  }

  function updateRowContent(row, entry, lang) {
    setText(row.rank, String(entry.rank));
    const shown = `#${entry.display}`;
    setText(row.label, shown);
    if (row.label.title !== shown) row.label.title = shown;
    setData(row.button, 'rank', entry.rank);
    setData(row.button, 'display', entry.display);
    const trend = entry.trend;
    row.button.classList.toggle('is-trend', Boolean(trend));
    row.why.hidden = !trend;
    row.side.hidden = !trend;
    row.count.hidden = Boolean(trend);
    const inLang = lang ? ` in ${languageName(lang)}` : '';
    if (!trend) {
      const countText = formatCount(entry.count);
      setText(row.count, countText);
      setData(row.button, 'count', entry.count);
      for (const k of ['authors', 'posts', 'expected', 'ratio', 'score', 'status', 'startedAt', 'sparkline']) setData(row.button, k, null);
      setAria(row.button, `Rank ${entry.rank}, #${entry.display}, ${countText} ${entry.count === 1 ? 'post' : 'posts'}${inLang}`);
      return;
    }
    const ratio = trend.authors / trend.expected;
    const authorsText = `${formatCount(trend.authors)} ${trend.authors === 1 ? 'author' : 'authors'}`;
    const ratioText = `${formatOneDecimal(ratio)}\u00d7 expected`;
    setText(row.authors, authorsText);
    setText(row.ratio, ratioText);
    const ratioTitle = `${formatCount(trend.authors)} distinct authors where its history predicts ${formatOneDecimal(trend.expected)}; `
      + `${formatCount(trend.posts)} ${trend.posts === 1 ? 'post' : 'posts'}`;
    if (row.ratio.title !== ratioTitle) row.ratio.title = ratioTitle;
    const sinceText = trend.startedAt && trend.startedAt.date ? formatSince(trend.startedAt.date) : '';
    setText(row.since, sinceText ? `since ${sinceText}` : '');
    const status = STATUSES[trend.status];
    setText(row.statusIcon, status.icon);
    setText(row.statusText, status.label);
    setData(row.status, 'status', trend.status);
    drawSpark(row.spark, trend.sparkline);
    setData(row.button, 'count', null);
    setData(row.button, 'authors', trend.authors);
    setData(row.button, 'posts', trend.posts);
    setData(row.button, 'expected', trend.expected);
    setData(row.button, 'ratio', formatOneDecimal(ratio));
    setData(row.button, 'score', trend.score);
    setData(row.button, 'status', trend.status);
    setData(row.button, 'startedAt', trend.startedAt ? trend.startedAt.raw : null);
    setData(row.button, 'sparkline', trend.sparkline.join(','));
    const line = trend.sparkline.length ? ` Authors across the window, oldest first: ${trend.sparkline.map(formatCount).join(', ')}.` : '';
    setAria(row.button, `Rank ${entry.rank}, #${entry.display}, ${status.label}${inLang}: ${authorsText}, `
      + `${formatOneDecimal(ratio)} times the ${formatOneDecimal(trend.expected)} expected`
      + `${sinceText ? `, trending since ${sinceText}` : ''}.${line}`);
  }

  const SPARK_W = 72;
  const SPARK_H = 24;

  /** A trend's sparkline (authors per step, oldest first), drawn into its <svg> with DOM calls. */
  function drawSpark(node, values) {
    const key = values.join(',');
    if (node.dataset.points === key && node.firstChild) return;
    node.dataset.points = key;
    const n = values.length;
    if (!n) {
      node.replaceChildren();
      return;
    }
    const pad = 2.5;
    const max = Math.max(1, ...values);
    const x = (i) => (n > 1 ? pad + (i / (n - 1)) * (SPARK_W - 2 * pad) : SPARK_W / 2);
    const y = (v) => SPARK_H - pad - (v / max) * (SPARK_H - 2 * pad);
    let d = '';
    for (let i = 0; i < n; i += 1) d += `${i ? 'L' : 'M'}${x(i).toFixed(1)} ${y(values[i]).toFixed(1)}`;
    const base = (SPARK_H - pad).toFixed(1);
    node.replaceChildren(
      svg('path', { class: 'spark-area', d: `${d}L${x(n - 1).toFixed(1)} ${base}L${x(0).toFixed(1)} ${base}Z` }),
      svg('path', { class: 'spark-line', d }),
      svg('circle', { class: 'spark-dot', cx: x(n - 1).toFixed(1), cy: y(values[n - 1]).toFixed(1), r: 2.2 }),
    );
  }

  /** Fade a bar out; `top` is where it currently shows, in px from the top of the list. */
  function removeRow(row, top) {
    const { li, button } = row;
    button.removeAttribute('data-testid'); // leaving bars are no longer "the chart"
    button.tabIndex = -1;
    button.disabled = true;
    li.setAttribute('aria-hidden', 'true');
    if (reducedMotion.matches) {
      li.remove();
      return;
    }
    // Take it out of the flow where it stands, then fade it out.
    li.style.transition = 'opacity var(--fade)';
    li.style.transform = '';
    li.style.top = `${top}px`;
    li.classList.add('leaving');
    setTimeout(() => li.remove(), LEAVE_MS + 50);
  }

  /**
   * Keyed update of the bar chart (FLIP): existing bars keep their elements and slide to their
   * new rank, widths animate, new bars fade in, bars that drop out fade away.
   */
  function renderChart(trends, selectedTag, lang) {
    const animate = !reducedMotion.matches;
    const focused = document.activeElement;

    // First: where every current bar is now (including any transform still in flight).
    // Everything is measured before anything changes.
    const before = new Map();
    const listTop = animate ? el.bars.getBoundingClientRect().top : 0;
    if (animate) for (const [tag, row] of rows) before.set(tag, row.li.getBoundingClientRect().top);

    const wanted = new Set(trends.map((t) => t.hashtag));
    let lostFocusAt = -1;
    for (const [tag, row] of rows) {
      if (wanted.has(tag)) continue;
      if (row.button === focused) lostFocusAt = Math.max(0, Number(row.button.dataset.rank) - 1 || 0);
      removeRow(row, animate ? before.get(tag) - listTop : 0);
      rows.delete(tag);
    }

    const max = trends.reduce((m, t) => Math.max(m, t.value), 0);
    const countChars = trends.reduce((m, t) => Math.max(m, t.trend ? 1 : formatCount(t.count).length), 1);
    if (el.bars.style.getPropertyValue('--count-chars') !== String(countChars)) {
      el.bars.style.setProperty('--count-chars', String(countChars));
    }
    const ordered = trends.map((entry) => {
      let row = rows.get(entry.hashtag);
      if (!row) {
        row = createRow(entry.hashtag);
        rows.set(entry.hashtag, row);
        if (animate) row.li.classList.add('entering');
      }
      updateRowContent(row, entry, lang);
      const selected = entry.hashtag === selectedTag;
      row.button.classList.toggle('selected', selected);
      if (row.button.getAttribute('aria-expanded') !== String(selected)) {
        row.button.setAttribute('aria-expanded', String(selected));
      }
      row.width = max > 0 ? Math.max(entry.value / max, entry.value > 0 ? 0.015 : 0) : 0;
      return row;
    });

    // Put the rows in rank order, moving as few nodes as possible (moving a node drops its
    // running transitions and, without moveBefore, its focus).
    const list = el.bars;
    let cursor = list.firstElementChild;
    for (const row of ordered) {
      while (cursor && cursor.classList.contains('leaving')) cursor = cursor.nextElementSibling;
      if (cursor === row.li) {
        cursor = cursor.nextElementSibling;
      } else if (typeof list.moveBefore === 'function' && row.li.isConnected) {
        list.moveBefore(row.li, cursor);
      } else {
        list.insertBefore(row.li, cursor);
      }
    }
    if (focused && focused.isConnected && document.activeElement !== focused && !focused.disabled) {
      focused.focus({ preventScroll: true });
    } else if (lostFocusAt >= 0 && ordered.length) {
      ordered[Math.min(lostFocusAt, ordered.length - 1)].button.focus({ preventScroll: true });
    }

    if (!animate) {
      for (const row of ordered) row.fill.style.width = `${(row.width * 100).toFixed(2)}%`;
      return;
    }

    // Last + invert: jump each moved bar back to where it was, without transition.
    for (const row of ordered) {
      const from = before.get(row.tag);
      if (from === undefined) continue;
      const dy = from - row.li.getBoundingClientRect().top;
      if (Math.abs(dy) > 0.5) {
        row.li.style.transition = 'none';
        row.li.style.transform = `translateY(${dy}px)`;
      }
    }
    void list.offsetHeight; // commit the "first" styles so the changes below transition

    // Play.
    for (const row of ordered) {
      row.li.style.transition = '';
      row.li.style.transform = '';
      row.li.classList.remove('entering');
      row.fill.style.width = `${(row.width * 100).toFixed(2)}%`;
    }
  }

  /** Chart container state: loading (no data yet), empty, or ready. */
  function renderChartState(chartState) {
    setData(el.chart, 'state', chartState);
    el.loading.hidden = chartState !== 'loading';
    el.empty.hidden = chartState !== 'empty';
    el.chart.setAttribute('aria-busy', String(chartState === 'loading'));
  }

  function renderLoadingMessage(text) {
    setText(el.loading, text);
  }

  /**
   * Details panel. `view` is null (closed) or { tag, range, window, status:
   * 'loading'|'ok'|'missing'|'error', error, data: fetchHashtag() result|null }.
   */
  function renderDetails(view) {
    const open = Boolean(view);
    el.details.hidden = !open;
    el.hint.hidden = open;
    if (!open) return;
    setData(el.details, 'hashtag', view.data ? view.data.hashtag : view.tag);
    setData(el.details, 'state', view.status);
    setText(el.detailsHeading, `#${view.data ? view.data.display || view.data.hashtag : view.tag}`);

    // Counts: one row per window; the current window is highlighted.
    if (el.detailsCounts.children.length !== WINDOWS.length) {
      el.detailsCounts.replaceChildren();
      for (const w of WINDOWS) {
        const item = make('div', 'details-row');
        item.dataset.window = w.id;
        const dt = make('dt');
        dt.textContent = w.label;
        const dd = make('dd', '', { 'data-testid': 'detail-count' });
        dd.dataset.window = w.id;
        item.append(dt, dd);
        el.detailsCounts.append(item);
      }
    }
    const counts = view.data ? view.data.counts : null;
    for (const item of el.detailsCounts.children) {
      const id = item.dataset.window;
      item.classList.toggle('current', id === view.window);
      const dd = item.lastElementChild;
      const value = counts ? counts[id] : null;
      setText(dd, value === null ? '\u2014' : formatCount(value));
      setData(dd, 'count', value);
    }

    for (const button of el.rangeButtons) {
      const pressed = String(button.dataset.range === view.range);
      if (button.getAttribute('aria-pressed') !== pressed) button.setAttribute('aria-pressed', pressed);
    }

    el.detailsBody.hidden = view.status === 'missing' || (view.status === 'error' && !view.data);
    el.detailsBody.classList.toggle('is-loading', view.status === 'loading' && !view.data);

    let message = '';
    if (view.status === 'missing') {
      message = `No posts with #${view.tag} yet. Hashtags show up here once someone uses them.`;
    } else if (view.status === 'error') {
      message = `Couldn\u2019t load #${view.tag}: ${view.error}.`;
    } else if (view.status === 'loading' && !view.data) {
      message = 'Loading\u2026';
    }
    el.detailsMessage.hidden = message === '';
    el.detailsMessage.classList.toggle('error', view.status === 'error');
    setText(el.detailsMessage, message);

    drawSeries(view);
  }

  /** A round number ≥ v: 1, 2, 5 × 10^k. */
  function niceCeil(v) {
    if (v <= 1) return 1;
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  /** The series chart's geometry and data, kept for the pointer / keyboard cursor. */
  const plot = { points: [], x: () => 0, y: () => 0, cursor: null, index: -1, summary: '', bucketSecs: null };

  /**
   * Line chart of the open tag's bucket counts over the chosen range, in SVG, sized to its box.
   * Exposes data-range, data-points, data-total and data-max for tests and tooling.
   */
  function drawSeries(view) {
    const chart = el.seriesChart;
    const series = view && view.data ? view.data.series[view.range] : null;
    if (!series) {
      chart.replaceChildren();
      for (const k of ['range', 'points', 'total', 'max', 'bucketSecs']) setData(chart, k, null);
      plot.points = [];
      setText(el.seriesReadout, view && view.data ? 'No time series from the API.' : '');
      return;
    }
    const points = series.points;
    const width = Math.max(160, Math.round(el.series.clientWidth || 280));
    const height = 150;
    const pad = { l: 36, r: 10, t: 10, b: 24 };
    const plotW = width - pad.l - pad.r;
    const plotH = height - pad.t - pad.b;
    const total = points.reduce((s, p) => s + p.count, 0);
    const max = points.reduce((m, p) => Math.max(m, p.count), 0);
    const top = niceCeil(max);
    const n = points.length;
    const x = (i) => pad.l + (n > 1 ? (i / (n - 1)) * plotW : plotW / 2);
    const y = (c) => pad.t + plotH - (c / top) * plotH;

    chart.setAttribute('viewBox', `0 0 ${width} ${height}`);
    chart.setAttribute('width', String(width));
    setData(chart, 'range', view.range);
    setData(chart, 'points', n);
    setData(chart, 'total', total);
    setData(chart, 'max', max);
    setData(chart, 'bucketSecs', series.bucketSecs);

    const nodes = [];
    // Grid and y labels: 0, half, top.
    for (const v of [0, top / 2, top]) {
      const gy = y(v).toFixed(1);
      nodes.push(svg('line', { class: 'grid', x1: pad.l, x2: width - pad.r, y1: gy, y2: gy }));
      const label = svg('text', { class: 'axis', x: pad.l - 6, y: gy, 'text-anchor': 'end', 'dominant-baseline': 'middle' });
      label.textContent = Number.isInteger(v) ? formatCount(v) : '';
      nodes.push(label);
    }
    // x labels: start, middle, end of the range (local time).
    if (n > 0) {
      const bucketMs = (series.bucketSecs || 0) * 1000;
      const ticks = [[0, 'start'], [Math.floor((n - 1) / 2), 'middle'], [n - 1, 'end']];
      for (const [i, anchor] of ticks) {
        const at = new Date(points[i].start.getTime() + (i === n - 1 ? bucketMs : 0));
        const label = svg('text', { class: 'axis', x: x(i).toFixed(1), y: height - 6, 'text-anchor': anchor });
        label.textContent = (sameDay(at, new Date()) ? shortTimeFormat : dayTimeFormat).format(at);
        nodes.push(label);
      }
      let d = '';
      for (let i = 0; i < n; i += 1) d += `${i ? 'L' : 'M'}${x(i).toFixed(1)} ${y(points[i].count).toFixed(1)}`;
      const base = y(0).toFixed(1);
      nodes.push(svg('path', { class: 'area', d: `${d}L${x(n - 1).toFixed(1)} ${base}L${x(0).toFixed(1)} ${base}Z` }));
      nodes.push(svg('path', { class: 'line', d, 'data-testid': 'detail-line' }));
    }
    const cursor = svg('g', { class: 'cursor', visibility: 'hidden' });
    cursor.append(svg('line', { y1: pad.t, y2: pad.t + plotH }), svg('circle', { r: 3.5 }));
    nodes.push(cursor);
    chart.replaceChildren(...nodes);

    const tag = `#${view.data.display || view.data.hashtag}`;
    const per = series.bucketSecs ? ` per ${formatDuration(series.bucketSecs)}` : '';
    const every = series.bucketSecs ? ` in any ${formatDuration(series.bucketSecs)}` : '';
    plot.summary = n
      ? `${formatCount(total)} ${total === 1 ? 'post' : 'posts'} in ${RANGES[view.range]}, at most ${formatCount(max)}${every}.`
      : 'No data points.';
    chart.setAttribute('aria-label', `Posts with ${tag}${per} over ${RANGES[view.range]}. Use the arrow keys to read each point.`);
    Object.assign(plot, { points, x, y, cursor, bucketSecs: series.bucketSecs });
    showPoint(plot.index < n ? plot.index : -1);
  }

  /** Move the chart cursor to point `i` (or hide it for -1) and say what is there. */
  function showPoint(i) {
    plot.index = i;
    const p = plot.points[i];
    if (!p || !plot.cursor) {
      if (plot.cursor) plot.cursor.setAttribute('visibility', 'hidden');
      setText(el.seriesReadout, plot.summary);
      return;
    }
    const cx = plot.x(i).toFixed(1);
    const [line, dot] = plot.cursor.children;
    line.setAttribute('x1', cx);
    line.setAttribute('x2', cx);
    dot.setAttribute('cx', cx);
    dot.setAttribute('cy', plot.y(p.count).toFixed(1));
    plot.cursor.setAttribute('visibility', 'visible');
    const when = sameDay(p.start, new Date()) ? timeFormat.format(p.start) : dateTimeFormat.format(p.start);
    const per = plot.bucketSecs ? ` in the ${formatDuration(plot.bucketSecs)} from` : ' at';
    setText(el.seriesReadout, `${formatCount(p.count)} ${p.count === 1 ? 'post' : 'posts'}${per} ${when}`);
  }

  // ---------------------------------------------------------------------------------------------
  // 5. Controller
  // ---------------------------------------------------------------------------------------------

  const state = {
    window: DEFAULT_WINDOW,
    limit: DEFAULT_LIMIT,
    sort: DEFAULT_SORT,
    lang: '', // '' = all languages
    languages: null, // fetchLanguages() result, once it answered
    languagesReq: { timer: 0, ctrl: null },
    data: null, // last trends snapshot of the current window, limit, sort and language
    details: null, // view for renderDetails()
    detailsReq: { seq: 0, ctrl: null, last: 0, timer: 0 },
    suggest: { timer: 0, ctrl: null, last: '' },
  };

  /** The live stream: one EventSource at a time, plus our own retry timer. */
  const stream = { es: null, retryTimer: 0, failures: 0, fresh: false };

  function readUrl() {
    const params = new URLSearchParams(window.location.search);
    const w = params.get('window');
    state.window = WINDOW_IDS.includes(w) ? w : DEFAULT_WINDOW;
    const limit = Number(params.get('limit'));
    state.limit = LIMITS.includes(limit) ? limit : DEFAULT_LIMIT;
    const sort = params.get('sort');
    state.sort = SORTS.includes(sort) ? sort : DEFAULT_SORT;
    const lang = (params.get('lang') || '').trim().toLowerCase();
    state.lang = LANG_RE.test(lang) ? lang : '';
    if (state.window === 'all') {
      // All time has no trending and no languages (the API refuses both).
      state.sort = 'count';
      state.lang = '';
    }
    return cleanQuery(params.get('tag') || '');
  }

  /** Keeps window, limit, sort, language and the open tag in the URL (shareable, survives a reload). */
  function writeUrl() {
    const url = new URL(window.location.href);
    const set = (k, v, dflt) => (v === dflt || v === '' ? url.searchParams.delete(k) : url.searchParams.set(k, v));
    set('window', state.window, DEFAULT_WINDOW);
    set('limit', String(state.limit), String(DEFAULT_LIMIT));
    set('sort', state.sort, DEFAULT_SORT);
    set('lang', state.lang, '');
    set('tag', state.details ? state.details.tag : '', '');
    if (url.href === window.location.href) return;
    try {
      window.history.replaceState(null, '', url);
    } catch (_) {
      // Not fatal (e.g. opaque origins); the controls still work.
    }
  }

  /** The normalized tag of the open panel, to highlight its bar. */
  function selectedTag() {
    const v = state.details;
    if (!v) return null;
    return v.data ? v.data.hashtag : v.tag.toLowerCase();
  }

  function render() {
    const data = state.data;
    renderControls();
    renderSubtitle(state.window, data ? data.watermark : null);
    if (!data) {
      renderChartState('loading');
      return;
    }
    renderChart(data.trends, selectedTag(), data.lang);
    renderChartState(data.trends.length ? 'ready' : 'empty');
  }

  // --- the stream ----------------------------------------------------------------------------------

  function retryDelay(failures) {
    const base = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.max(0, failures - 1));
    return Math.round(base * (0.8 + Math.random() * 0.4)); // jitter: clients don't come back in step
  }

  function disconnect() {
    clearTimeout(stream.retryTimer);
    stream.retryTimer = 0;
    if (stream.es) {
      stream.es.close();
      stream.es = null;
    }
  }

  /** (Re)opens the stream for the current window, limit, sort and language. The first event arrives at once. */
  function connect() {
    disconnect();
    if (navigator.onLine === false) {
      renderStatus('offline', 'no network');
      renderStale(true);
      return;
    }
    const q = new URLSearchParams({ window: state.window, limit: String(state.limit), sort: state.sort });
    if (state.lang) q.set('lang', state.lang);
    const es = new EventSource(new URL(`stream?${q}`, API_BASE));
    stream.es = es;
    stream.fresh = false;
    if (!state.data) renderStatus(stream.failures ? 'reconnecting' : 'connecting');

    es.addEventListener('open', () => {
      if (stream.es !== es) return;
      stream.failures = 0;
      renderStatus('live');
    });
    es.addEventListener('trends', (event) => {
      if (stream.es !== es) return;
      let data;
      try {
        data = parseTrends(JSON.parse(event.data));
      } catch (_) {
        renderStatus('reconnecting', 'unexpected data from the API');
        return;
      }
      // Not ours (cannot happen, but be sure).
      if ((data.window && data.window !== state.window) || data.sort !== state.sort || data.lang !== state.lang) return;
      stream.failures = 0;
      stream.fresh = true;
      state.data = data;
      render();
      renderStatus('live');
      renderStale(false);
      refreshDetailsSoon();
    });
    es.addEventListener('error', () => {
      if (stream.es !== es) return;
      stream.failures += 1;
      renderStale(true);
      if (!state.data) renderLoadingMessage('Can\u2019t reach the trends API yet. Retrying\u2026');
      const status = stream.failures >= OFFLINE_AFTER ? 'offline' : 'reconnecting';
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (an HTTP error such as 503 when the server is full, or a wrong
        // content type): retry ourselves, with back-off.
        es.close();
        stream.es = null;
        const delay = retryDelay(stream.failures);
        renderStatus(status, `retrying in ${Math.ceil(delay / 1000)} s`);
        stream.retryTimer = setTimeout(connect, delay);
      } else {
        // The connection dropped; the browser reconnects by itself.
        renderStatus(status, 'the stream dropped; reconnecting');
      }
    });
  }

  // --- details -------------------------------------------------------------------------------------

  function openDetails(tag) {
    const same = state.details && state.details.tag === tag;
    state.details = same
      ? state.details
      : { tag, range: state.details ? state.details.range : DEFAULT_RANGE, data: null, status: 'loading', error: '', window: state.window };
    renderDetails(state.details);
    if (state.data) renderChart(state.data.trends, selectedTag(), state.data.lang);
    writeUrl();
    refreshDetails(true);
  }

  /** Close the panel; focus goes back to the tag's bar when `refocus` and it is still shown. */
  function closeDetails(refocus) {
    const tag = selectedTag();
    state.details = null;
    state.detailsReq.seq += 1;
    clearTimeout(state.detailsReq.timer);
    if (state.detailsReq.ctrl) state.detailsReq.ctrl.abort();
    renderDetails(null);
    if (state.data) renderChart(state.data.trends, null, state.data.lang);
    writeUrl();
    const row = tag ? rows.get(tag) : null;
    if (refocus && row) row.button.focus({ preventScroll: true });
  }

  /** After a stream event: reload the open panel, at most every DETAILS_REFRESH_MS. */
  function refreshDetailsSoon() {
    if (!state.details || state.detailsReq.timer) return;
    const wait = Math.max(0, state.detailsReq.last + DETAILS_REFRESH_MS - Date.now());
    state.detailsReq.timer = setTimeout(() => {
      state.detailsReq.timer = 0;
      refreshDetails(false);
    }, wait);
  }

  /** (Re)load the open panel. `force` cancels a request in flight; otherwise one at a time. */
  async function refreshDetails(force) {
    const view = state.details;
    if (!view) return;
    if (state.detailsReq.ctrl) {
      if (!force) return;
      state.detailsReq.ctrl.abort();
    }
    const seq = ++state.detailsReq.seq;
    const ctrl = new AbortController();
    state.detailsReq.ctrl = ctrl;
    state.detailsReq.last = Date.now();
    let next;
    try {
      const data = await fetchHashtag(view.tag, ctrl.signal);
      next = data ? { data, status: 'ok', error: '' } : { data: null, status: 'missing', error: '' };
    } catch (err) {
      if (err && err.name === 'AbortError') return;
      if (!(err instanceof ApiError)) console.error(err); // a bug, not a network problem
      // Keep showing the last good data; say it could not be refreshed.
      next = { status: view.data ? 'ok' : 'error', error: err instanceof ApiError ? err.message : 'unexpected error' };
    } finally {
      if (state.detailsReq.ctrl === ctrl) state.detailsReq.ctrl = null;
    }
    if (seq !== state.detailsReq.seq || state.details !== view) return;
    const hadKey = selectedTag();
    Object.assign(view, next, { window: state.window });
    renderDetails(view);
    if (state.data && selectedTag() !== hadKey) renderChart(state.data.trends, selectedTag(), state.data.lang);
  }

  function setRange(range) {
    if (!state.details || !(range in RANGES) || state.details.range === range) return;
    state.details.range = range;
    plot.index = -1;
    renderDetails(state.details);
  }

  // --- search ---------------------------------------------------------------------------------------

  function submitSearch(event) {
    event.preventDefault();
    const tag = cleanQuery(el.searchInput.value);
    if (tag === '') {
      setText(el.searchError, 'Type a hashtag, for example #rust.');
      el.searchInput.setAttribute('aria-invalid', 'true');
      el.searchInput.focus();
      return;
    }
    setText(el.searchError, '');
    el.searchInput.removeAttribute('aria-invalid');
    openDetails(tag);
    if (window.matchMedia && window.matchMedia('(max-width: 759px)').matches) {
      el.details.scrollIntoView({ block: 'nearest', behavior: reducedMotion.matches ? 'auto' : 'smooth' });
    }
  }

  /** Suggestions while typing: the most used tags of all time that start with the input. */
  function suggestSoon() {
    clearTimeout(state.suggest.timer);
    state.suggest.timer = setTimeout(async () => {
      const prefix = cleanQuery(el.searchInput.value);
      if (prefix === state.suggest.last) return;
      state.suggest.last = prefix;
      if (state.suggest.ctrl) state.suggest.ctrl.abort();
      if (prefix === '') {
        el.suggestions.replaceChildren();
        return;
      }
      const ctrl = new AbortController();
      state.suggest.ctrl = ctrl;
      try {
        const found = await fetchSuggestions(prefix, ctrl.signal);
        if (state.suggest.ctrl !== ctrl) return;
        el.suggestions.replaceChildren(...found.map((t) => {
          const option = make('option');
          option.value = t.display;
          option.label = `#${t.display} \u00b7 ${formatCount(t.count)}`;
          return option;
        }));
      } catch (_) {
        // Suggestions are a nicety: a failure leaves the list as it was.
      } finally {
        if (state.suggest.ctrl === ctrl) state.suggest.ctrl = null;
      }
    }, SUGGEST_DELAY_MS);
  }

  // --- theme ----------------------------------------------------------------------------------------

  const THEMES = ['auto', 'light', 'dark'];
  const THEME_NAMES = { auto: 'automatic', light: 'light', dark: 'dark' };

  function renderTheme() {
    const theme = el.root.dataset.theme || 'auto';
    el.theme.dataset.theme = theme;
    const label = `Colour theme: ${THEME_NAMES[theme]} (change)`;
    el.theme.setAttribute('aria-label', label);
    el.theme.title = label;
  }

  function cycleTheme() {
    const current = el.root.dataset.theme || 'auto';
    const next = THEMES[(THEMES.indexOf(current) + 1) % THEMES.length];
    if (next === 'auto') delete el.root.dataset.theme;
    else el.root.dataset.theme = next;
    try {
      if (next === 'auto') localStorage.removeItem('theme');
      else localStorage.setItem('theme', next);
    } catch (_) {
      // Private mode: the choice lasts for this page only.
    }
    renderTheme();
  }

  // --- wiring ---------------------------------------------------------------------------------------

  /**
   * A new window, limit, sort or language: a new stream; the old data stays, marked stale,
   * until it answers. All time has no trending and no languages: choosing it switches to the
   * most used in all languages.
   */
  function changeQuery(change) {
    const next = { window: state.window, limit: state.limit, sort: state.sort, lang: state.lang, ...change };
    if (next.window === 'all') {
      next.sort = 'count';
      next.lang = '';
    }
    if (next.window === state.window && next.limit === state.limit && next.sort === state.sort && next.lang === state.lang) return;
    Object.assign(state, next);
    writeUrl();
    renderControls();
    renderSubtitle(state.window, state.data ? state.data.watermark : null);
    renderStale(true);
    if (state.details) {
      state.details.window = state.window;
      renderDetails(state.details);
    }
    connect();
  }

  /** The sort toggle, the selectors, the heading and the note, from the state. */
  function renderControls() {
    const all = state.window === 'all';
    for (const button of el.sortButtons) {
      const pressed = String(button.dataset.sort === state.sort);
      if (button.getAttribute('aria-pressed') !== pressed) button.setAttribute('aria-pressed', pressed);
      const off = all && button.dataset.sort === 'trending';
      button.disabled = off;
      const title = off ? 'All time has no trending: a trend is measured against recent history' : '';
      if (button.title !== title) button.title = title;
    }
    if (el.select.value !== state.window) el.select.value = state.window;
    if (el.limitSelect.value !== String(state.limit)) el.limitSelect.value = String(state.limit);
    el.langSelect.disabled = all;
    renderLanguages();
    const name = state.lang ? languageName(state.lang) : '';
    setText(el.sortLabel, `${state.sort === 'trending' ? 'Trending' : 'Most used'}${name ? ` in ${name}` : ''}`);
    setText(el.limitLabel, String(state.limit));
    setData(el.chart, 'sort', state.sort);
    let note = state.sort === 'trending'
      ? 'Hashtags used by unusually many people for this window, compared with their own recent history.'
      : 'Hashtags by number of posts in this window.';
    if (name) note += ` Posts in ${name} only.`;
    if (all) note += ' All time ranks by posts only: trending and languages need a shorter window.';
    setText(el.chartNote, note);
    if (state.sort === 'trending') {
      setText(el.emptyTitle, 'Nothing is trending right now');
      setText(el.emptyText, 'A hashtag trends when clearly more people than usual use it: at least 5 distinct authors, well above its recent history.');
    } else {
      setText(el.emptyTitle, 'No hashtags yet');
      setText(el.emptyText, `As posts${name ? ` in ${name}` : ''} arrive, the most used hashtags in this window will show up here.`);
    }
  }

  /**
   * The language selector: All languages, then every language of the last 24 hours with its
   * posts in the last hour. The chosen language stays listed even when the API no longer has
   * it. Rebuilt only when its content changes (an open dropdown is not disturbed otherwise).
   */
  function renderLanguages() {
    const list = (state.languages || []).slice();
    if (state.lang && !list.some((l) => l.code === state.lang)) list.push({ code: state.lang, posts1h: null });
    const options = [['', 'All languages']].concat(list.map((l) => [
      l.code, l.posts1h === null ? languageName(l.code) : `${languageName(l.code)} \u00b7 ${formatCount(l.posts1h)}/h`,
    ]));
    const key = JSON.stringify(options);
    if (el.langSelect.dataset.options !== key) {
      el.langSelect.dataset.options = key;
      el.langSelect.replaceChildren(...options.map(([code, text]) => {
        const option = make('option');
        option.value = code;
        option.textContent = text;
        if (code) option.dataset.code = code;
        return option;
      }));
    }
    if (el.langSelect.value !== state.lang) el.langSelect.value = state.lang;
  }

  /** Loads the languages now, then every LANGUAGES_REFRESH_MS (sooner after a failure). */
  async function refreshLanguages() {
    clearTimeout(state.languagesReq.timer);
    if (state.languagesReq.ctrl) state.languagesReq.ctrl.abort();
    const ctrl = new AbortController();
    state.languagesReq.ctrl = ctrl;
    let wait = LANGUAGES_REFRESH_MS;
    try {
      state.languages = await fetchLanguages(ctrl.signal);
      renderControls();
    } catch (err) {
      if (err && err.name === 'AbortError') return;
      wait = LANGUAGES_RETRY_MS; // e.g. 503 while the API catches up: the selector keeps what it had
    } finally {
      if (state.languagesReq.ctrl === ctrl) state.languagesReq.ctrl = null;
    }
    state.languagesReq.timer = setTimeout(refreshLanguages, wait);
  }

  function init() {
    el = lookUp();
    const tag = readUrl();
    render();
    renderStatus('connecting');
    renderTheme();

    el.select.addEventListener('change', () => {
      if (WINDOW_IDS.includes(el.select.value)) changeQuery({ window: el.select.value });
    });
    el.limitSelect.addEventListener('change', () => {
      const limit = Number(el.limitSelect.value);
      if (LIMITS.includes(limit)) changeQuery({ limit });
    });
    el.langSelect.addEventListener('change', () => {
      const lang = el.langSelect.value;
      if (lang === '' || LANG_RE.test(lang)) changeQuery({ lang });
    });
    for (const button of el.sortButtons) {
      button.addEventListener('click', () => {
        if (SORTS.includes(button.dataset.sort)) changeQuery({ sort: button.dataset.sort });
      });
    }

    // One delegated handler for all bars; <button> gives Enter/Space activation for free.
    el.bars.addEventListener('click', (event) => {
      const button = event.target instanceof Element ? event.target.closest('button.bar') : null;
      if (!button || button.disabled || !button.dataset.hashtag) return;
      if (selectedTag() === button.dataset.hashtag) {
        closeDetails(false);
      } else {
        openDetails(button.dataset.hashtag);
        if (window.matchMedia && window.matchMedia('(max-width: 759px)').matches) {
          el.details.scrollIntoView({ block: 'nearest', behavior: reducedMotion.matches ? 'auto' : 'smooth' });
        }
      }
    });
    el.detailsClose.addEventListener('click', () => closeDetails(true));
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && state.details) closeDetails(true);
    });
    for (const button of el.rangeButtons) button.addEventListener('click', () => setRange(button.dataset.range));

    // The series chart: hover with a pointer, or focus it and use the arrow keys.
    el.seriesChart.addEventListener('pointermove', (event) => {
      const n = plot.points.length;
      if (!n) return;
      const box = el.seriesChart.getBoundingClientRect();
      const vb = el.seriesChart.viewBox.baseVal;
      const px = ((event.clientX - box.left) / box.width) * (vb ? vb.width : box.width);
      const left = plot.x(0);
      const right = plot.x(n - 1);
      const i = Math.round(((px - left) / Math.max(1, right - left)) * (n - 1));
      showPoint(Math.min(n - 1, Math.max(0, i)));
    });
    el.seriesChart.addEventListener('pointerleave', () => {
      if (document.activeElement !== el.seriesChart) showPoint(-1);
    });
    el.seriesChart.addEventListener('blur', () => showPoint(-1));
    el.seriesChart.addEventListener('keydown', (event) => {
      const n = plot.points.length;
      if (!n) return;
      const step = event.shiftKey ? 10 : 1;
      const at = plot.index < 0 ? n : plot.index;
      const moves = { ArrowLeft: at - step, ArrowRight: at + step, Home: 0, End: n - 1 };
      if (!(event.key in moves)) return;
      event.preventDefault();
      showPoint(Math.min(n - 1, Math.max(0, moves[event.key])));
    });
    if (typeof ResizeObserver === 'function') {
      let width = 0;
      new ResizeObserver(() => {
        const w = Math.round(el.series.clientWidth);
        if (w === width || !state.details) return;
        width = w;
        drawSeries(state.details);
      }).observe(el.series);
    }

    el.searchForm.addEventListener('submit', submitSearch);
    el.searchInput.addEventListener('input', () => {
      if (el.searchError.textContent) {
        setText(el.searchError, '');
        el.searchInput.removeAttribute('aria-invalid');
      }
      suggestSoon();
    });
    el.theme.addEventListener('click', cycleTheme);

    window.addEventListener('offline', () => {
      disconnect();
      renderStatus('offline', 'no network');
      renderStale(true);
    });
    window.addEventListener('online', () => {
      stream.failures = 0;
      connect();
    });
    window.addEventListener('popstate', () => {
      const fromUrl = readUrl();
      renderControls();
      connect();
      if (fromUrl) openDetails(fromUrl);
      else if (state.details) closeDetails(false);
    });

    connect();
    refreshLanguages();
    if (tag) openDetails(tag);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init, { once: true });
  else init();
})();
