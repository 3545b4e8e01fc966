// Live trending hashtags page. Plain ES2020, no dependencies, no build step.
//
// Layout of this file:
//   1. config          constants shared by everything below
//   2. data layer      fetchTrends() / fetchHashtag(): HTTP + validation, never touch the DOM
//   3. formatting      numbers, times, window labels
//   4. rendering       render*(): DOM only, never fetch; API strings go in via textContent
//   5. controller      state, polling with backoff, URL sync, event wiring
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
  const DEFAULT_LIMIT = 10;
  const MAX_LIMIT = 100;

  const POLL_INTERVAL_MS = 1000;
  const MAX_BACKOFF_MS = 5000;
  const REQUEST_TIMEOUT_MS = 4000;
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
      try {
        res = await fetch(url, {
          signal: ctrl.signal,
          headers: { Accept: 'application/json' },
          cache: 'no-store',
        });
      } catch (err) {
        if (timedOut) throw new ApiError('request timed out');
        if (err && err.name === 'AbortError') throw err;
        throw new ApiError('network error');
      }
      let text;
      try {
        text = await res.text();
      } catch (err) {
        if (timedOut) throw new ApiError('request timed out');
        if (err && err.name === 'AbortError') throw err;
        throw new ApiError('connection lost while reading the response');
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
   * Validate a trends body. Drops malformed entries and duplicate tags (the chart is keyed by
   * hashtag), keeps the server's order, and throws ApiError if the shape is unusable.
   */
  function parseTrends(body) {
    if (!isObject(body) || !Array.isArray(body.trends)) {
      throw new ApiError('unexpected response from the API');
    }
    const seen = new Set();
    const trends = [];
    for (const item of body.trends) {
      if (!isObject(item)) continue;
      const { hashtag, count } = item;
      if (typeof hashtag !== 'string' || hashtag === '' || seen.has(hashtag) || !isCount(count)) continue;
      seen.add(hashtag);
      const rank = Number.isInteger(item.rank) && item.rank > 0 ? item.rank : trends.length + 1;
      // `display` is the most frequent original spelling; `hashtag` (normalized) is the identity.
      const display = typeof item.display === 'string' && item.display !== '' ? item.display : hashtag;
      trends.push({ rank, hashtag, display, count });
    }
    return {
      window: typeof body.window === 'string' ? body.window : null,
      watermark: parseWatermark(body.watermark),
      trends,
    };
  }

  /** GET /api/v1/trends → { window, watermark: {raw,date}|null, trends: [{rank,hashtag,display,count}] }. */
  async function fetchTrends(window, limit, signal) {
    const q = new URLSearchParams({ window, limit: String(limit) });
    return parseTrends(await getJson(`trends?${q}`, signal));
  }

  /**
   * GET /api/v1/hashtags/{tag} → { hashtag, counts: {window: number|null}, watermark } or null
   * when the API answers 404 (the tag has no counts).
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
    return {
      hashtag: typeof body.hashtag === 'string' && body.hashtag !== '' ? body.hashtag : tag,
      display: typeof body.display === 'string' && body.display !== '' ? body.display : null,
      counts,
      watermark: parseWatermark(body.watermark),
    };
  }

  // ---------------------------------------------------------------------------------------------
  // 3. Formatting
  // ---------------------------------------------------------------------------------------------

  const numberFormat = new Intl.NumberFormat();
  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit', second: '2-digit' });
  const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
    month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit', second: '2-digit',
  });

  const formatCount = (n) => numberFormat.format(n);

  /** Local time; the date is added when it is not today. */
  function formatTime(date) {
    const now = new Date();
    const sameDay = date.getFullYear() === now.getFullYear() && date.getMonth() === now.getMonth()
      && date.getDate() === now.getDate();
    return (sameDay ? timeFormat : dateTimeFormat).format(date);
  }

  const windowInfo = (id) => WINDOWS.find((w) => w.id === id) || WINDOWS[1];

  // ---------------------------------------------------------------------------------------------
  // 4. Rendering
  // ---------------------------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);
  const el = {
    status: $('status'),
    statusText: document.querySelector('#status .status-text'),
    windowLabel: $('window-label'),
    watermark: $('watermark'),
    limitLabel: $('limit-label'),
    select: $('window-select'),
    chart: $('chart'),
    bars: $('bars'),
    loading: $('loading'),
    empty: $('empty'),
    hint: $('details-hint'),
    details: $('details'),
    detailsHeading: $('details-heading'),
    detailsCounts: $('details-counts'),
    detailsMessage: $('details-message'),
    detailsClose: $('details-close'),
  };

  const reducedMotion = window.matchMedia ? window.matchMedia('(prefers-reduced-motion: reduce)') : { matches: false };

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function make(tag, className, attrs) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (attrs) for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  }

  /** Status pill: 'connecting' | 'live' | 'reconnecting'. Shown data is stale while reconnecting. */
  function renderStatus(state, detail) {
    const stale = String(state === 'reconnecting');
    if (el.chart.dataset.stale !== stale) el.chart.dataset.stale = stale;
    const text = { connecting: 'connecting\u2026', live: 'live', reconnecting: 'reconnecting\u2026' }[state];
    if (el.status.dataset.state !== state) el.status.dataset.state = state;
    setText(el.statusText, text);
    const title = detail ? `${text} (${detail})` : text;
    if (el.status.title !== title) el.status.title = title;
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
    const label = make('span', 'bar-label', { dir: 'auto', 'data-testid': 'hashtag' });
    label.textContent = `#${tag}`;
    label.title = `#${tag}`;
    track.append(fill, label);
    const count = make('span', 'bar-count', { 'data-testid': 'count', 'aria-hidden': 'true' });
    button.append(rank, track, count);
    li.append(button);
    return { tag, li, button, rank, fill, label, count, width: 0 };
  }

  function updateRowContent(row, entry) {
    setText(row.rank, String(entry.rank));
    const shown = `#${entry.display}`;
    setText(row.label, shown);
    if (row.label.title !== shown) row.label.title = shown;
    const countText = formatCount(entry.count);
    setText(row.count, countText);
    row.button.dataset.rank = String(entry.rank);
    row.button.dataset.count = String(entry.count);
    const name = `Rank ${entry.rank}, #${entry.display}, ${countText}`;
    if (row.button.getAttribute('aria-label') !== name) row.button.setAttribute('aria-label', name);
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
  function renderChart(trends, selectedTag) {
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

    const max = trends.reduce((m, t) => Math.max(m, t.count), 0);
    const countChars = trends.reduce((m, t) => Math.max(m, formatCount(t.count).length), 1);
    if (el.bars.style.getPropertyValue('--count-chars') !== String(countChars)) {
      el.bars.style.setProperty('--count-chars', String(countChars));
    }
    const ordered = trends.map((entry) => {
      let row = rows.get(entry.hashtag);
      const isNew = !row;
      if (isNew) {
        row = createRow(entry.hashtag);
        rows.set(entry.hashtag, row);
        if (animate) row.li.classList.add('entering');
      }
      updateRowContent(row, entry);
      const selected = entry.hashtag === selectedTag;
      row.button.classList.toggle('selected', selected);
      row.button.setAttribute('aria-expanded', String(selected));
      row.width = max > 0 ? Math.max(entry.count / max, entry.count > 0 ? 0.015 : 0) : 0;
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
  function renderChartState(state) {
    if (el.chart.dataset.state !== state) el.chart.dataset.state = state;
    el.loading.hidden = state !== 'loading';
    el.empty.hidden = state !== 'empty';
    el.chart.setAttribute('aria-busy', String(state === 'loading'));
  }

  function renderLoadingMessage(text) {
    setText(el.loading, text);
  }

  /**
   * Details panel. `view` is null (closed) or
   * { tag, data: {hashtag,counts,watermark}|null, status: 'loading'|'ok'|'missing'|'error', error, window }.
   */
  function renderDetails(view) {
    const open = Boolean(view);
    el.details.hidden = !open;
    el.hint.hidden = open;
    if (!open) return;
    el.details.dataset.hashtag = view.tag;
    el.details.dataset.state = view.status;
    setText(el.detailsHeading, `#${view.data ? view.data.display || view.data.hashtag : view.tag}`);

    // Counts: one row per window; the current window is highlighted.
    if (el.detailsCounts.children.length !== WINDOWS.length) {
      el.detailsCounts.replaceChildren();
      for (const w of WINDOWS) {
        const item = make('div', 'details-row');
        item.dataset.window = w.id;
        const dt = make('dt');
        dt.textContent = w.label;
        const dd = make('dd', '', { 'data-testid': 'details-count' });
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
      if (value === null) delete dd.dataset.count;
      else dd.dataset.count = String(value);
    }
    el.detailsCounts.hidden = view.status === 'missing';
    el.detailsCounts.classList.toggle('is-loading', view.status === 'loading' && !view.data);

    let message = '';
    if (view.status === 'missing') message = `#${view.tag} has no counts right now.`;
    else if (view.status === 'error') message = `Couldn\u2019t load details: ${view.error}. Retrying\u2026`;
    else if (view.status === 'loading' && !view.data) message = 'Loading\u2026';
    el.detailsMessage.hidden = message === '';
    el.detailsMessage.classList.toggle('error', view.status === 'error');
    setText(el.detailsMessage, message);
  }

  // ---------------------------------------------------------------------------------------------
  // 5. Controller
  // ---------------------------------------------------------------------------------------------

  const state = {
    window: DEFAULT_WINDOW,
    limit: DEFAULT_LIMIT,
    data: null, // last good fetchTrends() result
    failures: 0,
    poll: { seq: 0, timer: 0, ctrl: null },
    details: null, // view for renderDetails()
    detailsReq: { seq: 0, ctrl: null },
  };

  function readUrl() {
    const params = new URLSearchParams(window.location.search);
    const w = params.get('window');
    state.window = WINDOW_IDS.includes(w) ? w : DEFAULT_WINDOW;
    const limit = Number(params.get('limit'));
    state.limit = Number.isInteger(limit) && limit >= 1 && limit <= MAX_LIMIT ? limit : DEFAULT_LIMIT;
  }

  function writeUrl() {
    const url = new URL(window.location.href);
    if (url.searchParams.get('window') === state.window) return;
    url.searchParams.set('window', state.window);
    try {
      window.history.replaceState(null, '', url);
    } catch (_) {
      // Not fatal (e.g. opaque origins); the selector still works.
    }
  }

  function render() {
    const data = state.data;
    renderSubtitle(state.window, data ? data.watermark : null);
    if (!data) {
      renderChartState('loading');
      return;
    }
    renderChart(data.trends, state.details ? state.details.tag : null);
    renderChartState(data.trends.length ? 'ready' : 'empty');
  }

  // --- polling -----------------------------------------------------------------------------------

  function backoffMs(failures) {
    return Math.min(MAX_BACKOFF_MS, POLL_INTERVAL_MS * 2 ** Math.max(0, failures - 1));
  }

  function schedule(delay) {
    clearTimeout(state.poll.timer);
    state.poll.timer = setTimeout(poll, delay);
  }

  /** Fetch now: cancels any pending timer and any request still in flight. */
  function pollNow() {
    clearTimeout(state.poll.timer);
    if (state.poll.ctrl) state.poll.ctrl.abort();
    poll();
  }

  async function poll() {
    if (document.hidden) return; // resumed by visibilitychange
    const seq = ++state.poll.seq;
    const ctrl = new AbortController();
    state.poll.ctrl = ctrl;
    try {
      const data = await fetchTrends(state.window, state.limit, ctrl.signal);
      if (seq !== state.poll.seq) return; // superseded
      state.failures = 0;
      state.data = data;
      render();
      renderStatus('live');
      if (state.details) refreshDetails(false);
      schedule(POLL_INTERVAL_MS);
    } catch (err) {
      if (seq !== state.poll.seq) return; // superseded (window change, tab shown again…)
      state.failures += 1;
      const reason = err instanceof ApiError ? err.message : 'unexpected error';
      if (!(err instanceof ApiError)) console.error(err); // a bug, not a network problem
      renderStatus('reconnecting', reason);
      if (!state.data) renderLoadingMessage('Can\u2019t reach the trends API yet. Retrying\u2026');
      schedule(backoffMs(state.failures));
    } finally {
      if (state.poll.ctrl === ctrl) state.poll.ctrl = null;
    }
  }

  // --- details -------------------------------------------------------------------------------------

  function openDetails(tag) {
    const same = state.details && state.details.tag === tag;
    state.details = same
      ? state.details
      : { tag, data: null, status: 'loading', error: '', window: state.window };
    renderDetails(state.details);
    if (state.data) renderChart(state.data.trends, tag); // selection highlight
    refreshDetails(true);
  }

  /** Close the panel; focus goes back to the tag's bar when `refocus` and it is still shown. */
  function closeDetails(refocus) {
    const tag = state.details ? state.details.tag : null;
    state.details = null;
    state.detailsReq.seq += 1;
    if (state.detailsReq.ctrl) state.detailsReq.ctrl.abort();
    renderDetails(null);
    if (state.data) renderChart(state.data.trends, null);
    const row = tag ? rows.get(tag) : null;
    if (refocus && row) row.button.focus({ preventScroll: true });
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
    let next;
    try {
      const data = await fetchHashtag(view.tag, ctrl.signal);
      next = data ? { data, status: 'ok', error: '' } : { data: null, status: 'missing', error: '' };
    } catch (err) {
      if (err && err.name === 'AbortError') return;
      if (!(err instanceof ApiError)) console.error(err);
      next = { status: 'error', error: err instanceof ApiError ? err.message : 'unexpected error' };
    } finally {
      if (state.detailsReq.ctrl === ctrl) state.detailsReq.ctrl = null;
    }
    if (seq !== state.detailsReq.seq || state.details !== view) return;
    Object.assign(view, next, { window: state.window });
    renderDetails(view);
  }

  // --- wiring --------------------------------------------------------------------------------------

  function setWindow(id) {
    if (!WINDOW_IDS.includes(id) || id === state.window) return;
    state.window = id;
    writeUrl();
    renderSubtitle(state.window, state.data ? state.data.watermark : null);
    if (state.details) {
      state.details.window = id;
      renderDetails(state.details);
    }
    pollNow();
  }

  function init() {
    readUrl();
    el.select.value = state.window;
    setText(el.limitLabel, String(state.limit));
    render();
    renderStatus('connecting');

    el.select.addEventListener('change', () => setWindow(el.select.value));

    // One delegated handler for all bars; <button> gives Enter/Space activation for free.
    el.bars.addEventListener('click', (event) => {
      const button = event.target instanceof Element ? event.target.closest('button.bar') : null;
      if (!button || button.disabled || !button.dataset.hashtag) return;
      if (state.details && state.details.tag === button.dataset.hashtag) {
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

    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) pollNow();
    });
    window.addEventListener('online', pollNow);
    window.addEventListener('popstate', () => {
      readUrl();
      el.select.value = state.window;
      pollNow();
    });

    poll();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
