// The live page in a real browser against the real, running stack.
//
//   node tests/browser/page.test.mjs <base-url> <expectations.json> <artifacts-dir>
//
// Started by tests/e2e/tests/it/browser.rs, which runs a Kafka broker, hashtag-aggregator and
// trends-api as processes, produces posts and computes the expected rankings itself (the
// expectations file): by posts per window and per language, and the trending list (authors,
// expected, status, sparkline) with the API's `started_at` of each trend. Headless Chromium is Debian's `chromium` package (CHROMIUM_PATH, default
// /usr/bin/chromium), driven by playwright-core; nothing is downloaded.
//
// Talking to the Rust side, one line each way:
//   stdout NEED_MORE        → stdin PRODUCED <json>  (a second batch changed the ranking)
//   stdout NEED_API_DOWN    → stdin API_DOWN         (trends-api was killed with SIGKILL)
//   stdout NEED_API_UP      → stdin API_UP           (trends-api runs again, same port, ready)
// Every wait is for a condition, with a generous timeout; a failed wait says what it saw last.
// Exit code 0 when every check passed, 1 otherwise (with a screenshot of the failure).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { chromium } from 'playwright-core';

const [baseUrl, expectFile, artifactsDir] = process.argv.slice(2);
if (!baseUrl || !expectFile || !artifactsDir) {
  console.error('usage: node page.test.mjs <base-url> <expectations.json> <artifacts-dir>');
  process.exit(2);
}
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const WAIT_MS = Number(process.env.BROWSER_TEST_WAIT_MS || 90_000);
const expected = JSON.parse(fs.readFileSync(expectFile, 'utf8'));
fs.mkdirSync(artifactsDir, { recursive: true });

const log = (...args) => console.error('[page.test]', ...args);

// --- messages from the Rust side ----------------------------------------------------------------

const inbox = [];
const waiters = [];
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const i = waiters.findIndex((w) => line.startsWith(w.prefix));
  if (i >= 0) waiters.splice(i, 1)[0].resolve(line);
  else inbox.push(line);
});

/** Asks the Rust side for something (a line on stdout) and waits for its answer. */
async function ask(request, answerPrefix, timeoutMs = 3 * WAIT_MS) {
  process.stdout.write(`${request}\n`);
  log(`asked ${request}, waiting for ${answerPrefix}`);
  const queued = inbox.findIndex((l) => l.startsWith(answerPrefix));
  if (queued >= 0) return inbox.splice(queued, 1)[0];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${answerPrefix} from the test within ${timeoutMs} ms`)), timeoutMs);
    waiters.push({ prefix: answerPrefix, resolve: (line) => { clearTimeout(timer); resolve(line); } });
  });
}

// --- reading the page ---------------------------------------------------------------------------

// These run in the page (page.evaluate serializes each function alone: no shared helpers).

function readPage() {
  // The bars of the chart, top to bottom (bars fading out have no data-testid).
  const bars = Array.from(document.querySelectorAll('[data-testid="bar"]')).map((b) => ({
    hashtag: b.dataset.hashtag,
    display: b.dataset.display,
    count: Number(b.dataset.count),
    rank: Number(b.dataset.rank),
    label: b.querySelector('[data-testid="hashtag"]').textContent,
    shown: b.querySelector('[data-testid="count"]').textContent,
  }));
  const chart = document.querySelector('[data-testid="chart"]');
  const time = document.querySelector('[data-testid="watermark"] time');
  return {
    connection: document.querySelector('[data-testid="connection"]').dataset.state,
    connectionText: document.querySelector('[data-testid="connection"]').textContent.trim(),
    stale: chart.dataset.stale,
    watermark: time ? time.getAttribute('datetime') : null,
    watermarkText: document.querySelector('[data-testid="watermark"]').textContent.trim(),
    bars,
  };
}

function readTrending() {
  const text = (b, id) => {
    const n = b.querySelector(`[data-testid="${id}"]`);
    return n && n.getClientRects().length > 0 ? n.textContent : null; // null: not shown
  };
  const rows = Array.from(document.querySelectorAll('[data-testid="bar"]')).map((b) => {
    const spark = b.querySelector('[data-testid="sparkline"]');
    return {
      hashtag: b.dataset.hashtag,
      display: b.dataset.display,
      rank: Number(b.dataset.rank),
      trend: b.classList.contains('is-trend'),
      authors: Number(b.dataset.authors),
      posts: Number(b.dataset.posts),
      expected: Number(b.dataset.expected),
      status: b.dataset.status,
      sparkline: b.dataset.sparkline,
      startedAt: b.dataset.startedAt,
      label: text(b, 'hashtag'),
      whyAuthors: text(b, 'why-authors'),
      whyRatio: text(b, 'why-ratio'),
      whySince: text(b, 'why-since'),
      statusText: text(b, 'status'),
      count: text(b, 'count'),
      spark: {
        shown: spark.getClientRects().length > 0,
        points: spark.dataset.points,
        line: Boolean(spark.querySelector('path.spark-line')),
      },
      aria: b.getAttribute('aria-label'),
    };
  });
  const chart = document.querySelector('[data-testid="chart"]');
  const time = document.querySelector('[data-testid="watermark"] time');
  const pressed = document.querySelector('.sort-button[aria-pressed="true"]');
  return {
    connection: document.querySelector('[data-testid="connection"]').dataset.state,
    stale: chart.dataset.stale,
    watermark: time ? time.getAttribute('datetime') : null,
    sort: pressed ? pressed.dataset.sort : null,
    heading: document.querySelector('[data-testid="sort-label"]').textContent,
    lang: document.querySelector('[data-testid="lang-select"]').value,
    rows,
  };
}

/** "since HH:MM" as the page must write `started_at` (local time; the day when not today). */
function sinceTexts(startedAt) {
  const now = new Date();
  const out = {};
  for (const [tag, raw] of Object.entries(startedAt)) {
    const d = new Date(raw);
    const today = d.getFullYear() === now.getFullYear() && d.getMonth() === now.getMonth() && d.getDate() === now.getDate();
    const format = today
      ? new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' })
      : new Intl.DateTimeFormat(undefined, { weekday: 'short', hour: 'numeric', minute: '2-digit' });
    out[tag] = `since ${format.format(d)}`;
  }
  return out;
}

function readLanguages() {
  const select = document.querySelector('[data-testid="lang-select"]');
  return {
    disabled: select.disabled,
    value: select.value,
    options: Array.from(select.options).map((o) => ({ value: o.value, text: o.textContent })),
  };
}

function readDetail() {
  const panel = document.querySelector('[data-testid="detail"]');
  const chart = document.querySelector('[data-testid="detail-chart"]');
  const counts = {};
  for (const dd of document.querySelectorAll('[data-testid="detail-count"]')) {
    counts[dd.dataset.window] = dd.dataset.count === undefined ? null : Number(dd.dataset.count);
  }
  return {
    hidden: panel.hidden,
    state: panel.dataset.state,
    hashtag: panel.dataset.hashtag,
    heading: document.querySelector('[data-testid="detail-hashtag"]').textContent,
    message: document.querySelector('[data-testid="detail-message"]').hidden
      ? '' : document.querySelector('[data-testid="detail-message"]').textContent,
    counts,
    chart: {
      visible: chart.getClientRects().length > 0,
      range: chart.dataset.range,
      points: Number(chart.dataset.points),
      total: Number(chart.dataset.total),
      max: Number(chart.dataset.max),
      hasLine: Boolean(chart.querySelector('path.line')),
    },
  };
}

/** Polls `read` in the page until `check(value)` returns true; fails with the last value. */
async function waitUntil(page, what, read, check, arg) {
  const deadline = Date.now() + WAIT_MS;
  let last;
  for (;;) {
    last = await page.evaluate(read, arg);
    if (check(last)) return last;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${WAIT_MS} ms waiting for ${what}; last seen:\n${JSON.stringify(last, null, 1)}`);
    }
    await page.waitForTimeout(200); // the polling interval of this condition, not a wait for an outcome
  }
}

/** The first `limit` entries of an expected ranking, as the chart should show them. */
function top(ranking, limit) {
  return ranking.slice(0, limit).map((t, i) => ({ rank: i + 1, ...t }));
}

function barsMatch(bars, want) {
  return bars.length === want.length && bars.every((b, i) => b.hashtag === want[i].hashtag
    && b.display === want[i].display && b.count === want[i].count && b.rank === want[i].rank
    && b.label === `#${want[i].display}` && b.shown.replace(/\D/g, '') === String(want[i].count));
}

const sameInstant = (a, b) => a !== null && b !== null && new Date(a).getTime() === new Date(b).getTime();

async function expectChart(page, what, want, watermark) {
  return waitUntil(page, what, readPage, (p) => p.connection === 'live' && p.stale === 'false'
    && barsMatch(p.bars, want) && sameInstant(p.watermark, watermark));
}

/**
 * Whether the rows are the expected trending list, each saying why it trends: its authors,
 * ×(authors / expected) with one decimal, its status in words, its sparkline drawn.
 */
function trendingMatch(rows, want) {
  return rows.length === want.length && rows.every((r, i) => {
    const t = want[i];
    return r.trend && r.hashtag === t.hashtag && r.display === t.display && r.rank === i + 1
      && r.label === `#${t.display}` && r.authors === t.authors && r.posts === t.posts
      && r.expected === t.expected && r.status === t.status && r.sparkline === t.sparkline.join(',')
      && r.whyAuthors === `${t.authors} authors` && r.whyRatio === `${(t.authors / t.expected).toFixed(1)}\u00d7 expected`
      && r.statusText !== null && r.statusText.includes(t.status) && r.count === null
      && r.spark.shown && r.spark.line && r.spark.points === t.sparkline.join(',')
      && r.aria.includes(`${t.authors} authors`) && r.aria.includes(t.status);
  });
}

async function expectTrending(page, what, want, watermark, lang = '') {
  return waitUntil(page, what, readTrending, (p) => p.connection === 'live' && p.stale === 'false'
    && p.sort === 'trending' && p.lang === lang && trendingMatch(p.rows, want) && sameInstant(p.watermark, watermark));
}

/** A screenshot once no CSS transition runs (the live dot's endless pulse is an animation). */
async function screenshot(page, file) {
  await waitUntil(page, 'CSS transitions to finish before the screenshot',
    () => document.getAnimations().filter((a) => a instanceof CSSTransition).length, (n) => n === 0);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`SCREENSHOT ${file}`);
}

// --- contrast -----------------------------------------------------------------------------------

function readColours() {
  const style = getComputedStyle(document.documentElement);
  const names = ['text', 'muted', 'bg', 'surface', 'surface-2', 'accent-text', 'danger'];
  return Object.fromEntries(names.map((n) => [n, style.getPropertyValue(`--${n}`).trim()]));
}

function luminance(hex) {
  const m = /^#([0-9a-f]{6})$/i.exec(hex);
  assert.ok(m, `colour ${hex} is #rrggbb`);
  const [r, g, b] = [0, 2, 4].map((i) => parseInt(m[1].slice(i, i + 2), 16) / 255)
    .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

function contrast(a, b) {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

async function checkContrast(page, scheme) {
  await page.emulateMedia({ colorScheme: scheme });
  const c = await page.evaluate(readColours);
  for (const fg of ['text', 'muted', 'accent-text', 'danger']) {
    for (const bg of ['bg', 'surface', 'surface-2']) {
      const ratio = contrast(c[fg], c[bg]);
      assert.ok(ratio >= 4.5, `${scheme}: --${fg} ${c[fg]} on --${bg} ${c[bg]} has contrast ${ratio.toFixed(2)} < 4.5`);
    }
  }
  log(`${scheme} theme: text colours have contrast >= 4.5 on every background`);
}

// --- the test -----------------------------------------------------------------------------------

const consoleErrors = [];
let phase = 'load';
/** Browser messages that are expected in a phase: network failures, not script errors. */
const ALLOWED = {
  'unknown-search': /status of 404/,
  outage: /Failed to load resource|net::ERR_|EventSource/,
};

async function run(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') consoleErrors.push({ phase, type: m.type(), text: m.text() });
  });
  page.on('pageerror', (e) => consoleErrors.push({ phase, type: 'pageerror', text: String(e && e.stack || e) }));
  let loads = 0; // full page loads (history.replaceState is not one)
  page.on('load', () => { loads += 1; });

  try {
    log(`opening ${baseUrl}`);
    await page.goto(baseUrl);
    const w = expected.trends;

    // 1. Trending is the default: the expected top 10 of 5m, each row saying why it trends.
    let trending = await expectTrending(page, 'the trending top 10 of 5m', expected.trending.slice(0, 10), expected.watermark);
    assert.equal(trending.heading, 'Trending');
    assert.equal(trending.rows[0].hashtag, expected.burst, 'the burst trends first');
    const since = await page.evaluate(sinceTexts, expected.started_at);
    for (const row of trending.rows) {
      assert.equal(row.startedAt, expected.started_at[row.hashtag], `#${row.hashtag}: started_at`);
      assert.equal(row.whySince, since[row.hashtag], `#${row.hashtag}: since, local time`);
    }
    const burst = trending.rows[0];
    assert.match(burst.aria, new RegExp(`^Rank 1, #${burst.display}, rising: ${burst.authors} authors, \\d+\\.\\d times the 1\\.0 expected, trending since `));
    assert.match(burst.aria, /Authors across the window, oldest first: [\d, ]+\.$/);
    assert.doesNotMatch(page.url(), /[?&]sort=/, 'the default sort is not in the URL');
    assert.equal(await page.locator('[data-testid="sort-trending"]').getAttribute('aria-pressed'), 'true');
    assert.equal(await page.getByLabel('Window', { exact: true }).inputValue(), '5m');
    log(`trending (default): top 10 of 5m; #${burst.hashtag} first with ${burst.whyAuthors}, ${burst.whyRatio}, `
      + `${burst.whySince}, ${burst.statusText.trim()}, sparkline ${burst.sparkline}`);
    await screenshot(page, path.join(artifactsDir, 'page-trending.png'));
    const explain = page.locator('[data-testid="explain"]');
    await explain.locator('summary').click();
    assert.equal(await explain.evaluate((d) => d.open), true);
    assert.match(await explain.textContent(), /at least 5 authors.*more than 5 posts per author/s);
    await explain.locator('summary').click();
    log('"How trending works" opens and says what it takes');
    await page.evaluate(() => { window.__sameDocument = 'yes'; }); // gone if the page reloads

    // The languages: every language of the feed, most posts first, with its posts in 1 h.
    const languages = await waitUntil(page, 'the language selector', readLanguages,
      (l) => l.options.length === expected.languages.length + 1);
    assert.deepEqual(languages.options.map((o) => o.value), [''].concat(expected.languages.map((l) => l.code)));
    assert.equal(languages.options[0].text, 'All languages');
    for (const [i, l] of expected.languages.entries()) {
      const text = languages.options[i + 1].text;
      assert.ok(text.endsWith(` \u00b7 ${l.posts_1h}/h`), `option ${text} shows ${l.posts_1h} posts in 1 h`);
      assert.ok(!text.startsWith(`${l.code} `), `option ${text} has a readable name`);
    }
    log(`languages: ${languages.options.map((o) => o.text).join(' | ')}`);

    // Most used: the counts of the default window, live.
    await page.locator('[data-testid="sort-count"]').click();
    let seen = await expectChart(page, 'the top 10 of 5m', top(w['5m'], 10), expected.watermark);
    assert.equal(seen.connectionText, 'live');
    assert.match(seen.watermarkText, /^data as of /);
    assert.equal(await page.locator('[data-testid="watermark"]').getAttribute('aria-live'), 'polite');
    assert.match(page.url(), /[?&]sort=count\b/);
    assert.equal(await page.locator('[data-testid="sort-label"]').textContent(), 'Most used');
    log('most used: top 10 of 5m in order with their counts; connection live; watermark', seen.watermark);

    // 2. The limit selector (found by its label).
    const limit = page.getByLabel('Show', { exact: true });
    await limit.selectOption('5');
    await expectChart(page, 'the top 5 of 5m', top(w['5m'], 5), expected.watermark);
    await limit.selectOption('20');
    await expectChart(page, 'the top 20 of 5m', top(w['5m'], 20), expected.watermark);
    assert.match(page.url(), /[?&]limit=20\b/);
    // Every script of the data is in the top 20: the fonts must show them all (look at it).
    await screenshot(page, path.join(artifactsDir, 'page-top20-scripts.png'));
    await limit.selectOption('10');
    await expectChart(page, 'the top 10 of 5m again', top(w['5m'], 10), expected.watermark);
    log('limit selector: 5, 20, 10 show exactly that many, in order');

    // 3. The window selector changes the data (1m and all rank differently).
    const windowSelect = page.getByLabel('Window', { exact: true });
    for (const id of ['1m', 'all']) {
      await windowSelect.selectOption(id);
      await expectChart(page, `the top 10 of ${id}`, top(w[id], 10), expected.watermark);
      assert.match(page.url(), new RegExp(`[?&]window=${id}\\b`));
      log(`window ${id}: top 10 in order`);
    }
    // All time has no trending and no languages: both are disabled, and say why.
    assert.equal(await page.locator('[data-testid="sort-trending"]').isDisabled(), true);
    assert.match(await page.locator('[data-testid="sort-trending"]').getAttribute('title'), /no trending/);
    assert.equal((await page.evaluate(readLanguages)).disabled, true);
    assert.match(await page.locator('[data-testid="chart-note"]').textContent(), /All time ranks by posts only/);
    log('window all: Trending and the language selector are disabled');
    await windowSelect.selectOption('5m');
    await expectChart(page, 'the top 10 of 5m again', top(w['5m'], 10), expected.watermark);

    // 4. Keyboard: Tab reaches the bars with a visible focus ring; Enter opens, Escape closes.
    await page.locator('body').focus();
    let focused = null;
    for (let i = 0; i < 12 && !(focused && focused.bar); i += 1) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate(() => {
        const a = document.activeElement;
        const s = getComputedStyle(a);
        return { bar: a.dataset.testid === 'bar', hashtag: a.dataset.hashtag || null, outline: s.outlineStyle, width: s.outlineWidth };
      });
    }
    assert.ok(focused && focused.bar, `Tab reaches the first bar (last focused: ${JSON.stringify(focused)})`);
    assert.equal(focused.hashtag, w['5m'][0].hashtag);
    assert.notEqual(focused.outline, 'none', 'a focused bar shows a focus ring');
    await page.keyboard.press('Enter');
    await waitUntil(page, 'Enter to open the first bar', readDetail, (d) => !d.hidden && d.state === 'ok'
      && d.hashtag === w['5m'][0].hashtag);
    await page.keyboard.press('Escape');
    await waitUntil(page, 'Escape to close the panel', readDetail, (d) => d.hidden);
    assert.equal(await page.evaluate(() => document.activeElement.dataset.hashtag), w['5m'][0].hashtag,
      'focus returns to the bar');
    log('keyboard: Tab to a bar (focus ring shown), Enter opens its details, Escape closes them');

    // 5. Clicking a bar shows its counts and its series; the series add up to the counts.
    const d = expected.detail;
    await page.locator(`[data-testid="bar"][data-hashtag="${d.hashtag}"]`).click();
    let detail = await waitUntil(page, `the details of #${d.hashtag}`, readDetail, (x) => !x.hidden && x.state === 'ok'
      && x.hashtag === d.hashtag && x.chart.range === '1h' && x.chart.hasLine);
    assert.equal(detail.heading, `#${d.display}`);
    assert.deepEqual(detail.counts, d.counts, 'counts per window');
    assert.ok(detail.chart.visible, 'the series chart is shown');
    assert.deepEqual(
      { points: detail.chart.points, total: detail.chart.total, max: detail.chart.max },
      d.series['1h'], 'the last hour: 360 points adding up to the 1h count');
    assert.equal(detail.chart.total, d.counts['1h']);
    await page.locator('[data-testid="range-24h"]').click();
    detail = await waitUntil(page, 'the 24 h series', readDetail, (x) => x.chart.range === '24h');
    assert.deepEqual(
      { points: detail.chart.points, total: detail.chart.total, max: detail.chart.max },
      d.series['24h'], 'the last 24 h: 288 points adding up to the 24h count');
    assert.equal(detail.chart.total, d.counts['24h']);
    assert.equal(await page.locator('[data-testid="range-24h"]').getAttribute('aria-pressed'), 'true');
    await page.locator('[data-testid="detail-chart"]').focus();
    await page.keyboard.press('End');
    assert.match(await page.locator('[data-testid="detail-readout"]').textContent(), /\d+ posts? /);
    await page.locator('[data-testid="range-1h"]').click();
    await waitUntil(page, 'the 1 h series again', readDetail, (x) => x.chart.range === '1h');
    log(`details of #${d.hashtag}: counts in every window; 1h series ${JSON.stringify(d.series['1h'])}; 24h series ${JSON.stringify(d.series['24h'])}`);

    // 6. Search: an unknown tag gets a friendly message; a known one in any spelling opens it.
    phase = 'unknown-search';
    const search = page.getByLabel('Find a hashtag');
    await search.fill(`#${expected.unknown}`);
    await search.press('Enter');
    detail = await waitUntil(page, 'the unknown-tag message', readDetail, (x) => !x.hidden && x.state === 'missing');
    assert.equal(detail.message, `No posts with #${expected.unknown} yet. Hashtags show up here once someone uses them.`);
    assert.equal(detail.chart.visible, false);
    phase = 'search';
    // Suggestions while typing: the tags of all time that start with the input, most used first.
    const prefix = expected.suggest_prefix;
    const suggested = expected.trends.all.filter((t) => t.hashtag.startsWith(prefix)).slice(0, 8).map((t) => t.display);
    assert.ok(suggested.length >= 2, `the data has several tags starting with ${prefix}`);
    await search.fill(`#${prefix}`);
    await waitUntil(page, `suggestions for "${prefix}"`,
      () => Array.from(document.querySelectorAll('#search-suggestions option')).map((o) => o.value),
      (values) => JSON.stringify(values) === JSON.stringify(suggested));
    await search.fill(`#${d.display.toUpperCase()}`);
    await page.locator('[data-testid="search-submit"]').click();
    detail = await waitUntil(page, `search to open #${d.hashtag}`, readDetail, (x) => !x.hidden && x.state === 'ok'
      && x.hashtag === d.hashtag && x.chart.hasLine);
    assert.deepEqual(detail.counts, d.counts);
    log(`search: unknown tag → friendly message; suggestions for "${prefix}" → ${suggested.join(', ')}; known tag in capitals → its details`);

    // 6b. A language: Most used counts only its posts (exact), Trending only its authors.
    const langSelect = page.getByLabel('Language', { exact: true });
    await langSelect.selectOption(expected.lang);
    await expectChart(page, `the top 10 of 5m in ${expected.lang}`, top(expected.lang_trends['5m'], 10), expected.watermark);
    assert.match(page.url(), new RegExp(`[?&]lang=${expected.lang}\\b`));
    const langName = (await page.evaluate(readLanguages)).options.find((o) => o.value === expected.lang).text.split(' \u00b7 ')[0];
    assert.equal(await page.locator('[data-testid="sort-label"]').textContent(), `Most used in ${langName}`);
    log(`language ${expected.lang} (${langName}), most used: ${JSON.stringify(top(expected.lang_trends['5m'], 10).map((t) => [t.hashtag, t.count]))}`);
    await page.locator('[data-testid="sort-trending"]').click();
    trending = await expectTrending(page, `trending in ${expected.lang}`, expected.lang_trending.slice(0, 10), expected.watermark, expected.lang);
    assert.equal(trending.heading, `Trending in ${langName}`);
    log(`language ${expected.lang}, trending: ${trending.rows.map((r) => `#${r.hashtag} ${r.whyAuthors}`).join(', ')}`);
    // All time has neither: choosing it switches to Most used in all languages.
    await windowSelect.selectOption('all');
    seen = await expectChart(page, 'all time, most used, all languages', top(w.all, 10), expected.watermark);
    assert.deepEqual(await page.evaluate(() => ({
      sort: document.querySelector('.sort-button[aria-pressed="true"]').dataset.sort,
      lang: document.querySelector('[data-testid="lang-select"]').value,
    })), { sort: 'count', lang: '' });
    assert.match(page.url(), /[?&]sort=count\b/);
    assert.doesNotMatch(page.url(), /[?&]lang=/);
    log('trending in a language, then All time: most used in all languages');
    await windowSelect.selectOption('5m');
    await page.locator('[data-testid="sort-trending"]').click();
    await expectTrending(page, 'trending in all languages again', expected.trending.slice(0, 10), expected.watermark);
    assert.doesNotMatch(page.url(), /[?&](lang|sort|window)=/);

    // 7. New posts arrive: the trending list changes without a reload (a new #1, the burst's
    // row grows), then Most used shows the new counts.
    phase = 'update';
    const produced = JSON.parse((await ask('NEED_MORE', 'PRODUCED ')).slice('PRODUCED '.length));
    trending = await expectTrending(page, `the new trending top 10 with #${produced.new_top} first`, produced.trending.slice(0, 10), produced.watermark);
    assert.equal(trending.rows[0].hashtag, produced.new_top);
    assert.equal(await page.evaluate(() => window.__sameDocument), 'yes', 'no reload');
    log(`trending update without reload: #${produced.new_top} is now first; #${expected.burst} has ${trending.rows[1].whyAuthors}, sparkline ${trending.rows[1].sparkline}`);
    await screenshot(page, path.join(artifactsDir, 'page-trending-update.png'));
    await page.locator('[data-testid="sort-count"]').click();
    seen = await expectChart(page, `the new top 10 of 5m with #${produced.new_top} first`, top(produced.trends['5m'], 10), produced.watermark);
    assert.equal(seen.bars[0].hashtag, produced.new_top);
    assert.equal(await page.evaluate(() => window.__sameDocument), 'yes', 'no reload');
    assert.equal(loads, 1, 'no page load since the first');
    log(`update without reload: #${produced.new_top} is now first; watermark ${seen.watermark}`);

    // 8. The stream drops (API killed) and comes back by itself (API restarted).
    phase = 'outage';
    await ask('NEED_API_DOWN', 'API_DOWN');
    seen = await waitUntil(page, 'the indicator to show the outage', readPage, (p) => p.connection === 'reconnecting' || p.connection === 'offline');
    log(`outage: indicator says ${seen.connection}`);
    await ask('NEED_API_UP', 'API_UP');
    seen = await expectChart(page, 'the stream to come back by itself', top(produced.trends['5m'], 10), produced.watermark);
    assert.equal(seen.connectionText, 'live');
    assert.equal(await page.evaluate(() => window.__sameDocument), 'yes', 'no reload');
    phase = 'after-outage';
    log('reconnect: back to live with the same data, no reload');

    // 9. The screenshot, then phone width in the dark theme, then contrast in both themes.
    await screenshot(page, path.join(artifactsDir, 'page.png'));
    await page.setViewportSize({ width: 375, height: 812 });
    await page.emulateMedia({ colorScheme: 'dark' });
    const widths = await waitUntil(page, 'no horizontal scrolling at 375 px', () => ({
      scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,
    }), (x) => x.scroll <= 375);
    await screenshot(page, path.join(artifactsDir, 'page-375-dark.png'));
    log(`phone width: page is ${widths.scroll} px wide at a 375 px viewport`);
    await page.locator('[data-testid="sort-trending"]').click();
    await expectTrending(page, 'trending at phone width', produced.trending.slice(0, 10), produced.watermark);
    const narrow = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(narrow <= 375, `no horizontal scrolling at 375 px in trending (${narrow} px)`);
    await screenshot(page, path.join(artifactsDir, 'page-375-dark-trending.png'));
    await page.locator('[data-testid="sort-count"]').click();
    await expectChart(page, 'most used again', top(produced.trends['5m'], 10), produced.watermark);
    await checkContrast(page, 'light');
    await checkContrast(page, 'dark');

    // 10. The theme toggle: automatic → light → dark, remembered across a reload, back to automatic.
    phase = 'theme';
    await page.emulateMedia({ colorScheme: 'light' });
    const theme = page.locator('[data-testid="theme-toggle"]');
    const readTheme = () => ({ theme: document.documentElement.dataset.theme || 'auto',
      bg: getComputedStyle(document.documentElement).getPropertyValue('--bg').trim() });
    const light = await page.evaluate(readTheme);
    await theme.click();
    await theme.click();
    const dark = await page.evaluate(readTheme);
    assert.equal(dark.theme, 'dark');
    assert.notEqual(dark.bg, light.bg, 'the dark theme applies under a light system preference');
    assert.match(await theme.getAttribute('aria-label'), /dark/);
    await page.reload();
    assert.deepEqual(await page.evaluate(readTheme), dark, 'the choice survives a reload');
    await waitUntil(page, 'live again after the reload', readPage, (p) => p.connection === 'live');
    assert.equal(await page.locator('[data-testid="sort-count"]').getAttribute('aria-pressed'), 'true',
      'Most used, kept in the URL, survives the reload');
    await page.locator('[data-testid="theme-toggle"]').click();
    assert.deepEqual(await page.evaluate(readTheme), light, 'back to automatic');
    log('theme toggle: dark under a light system, remembered across a reload, back to automatic');

    // 11. No script errors, and no console errors but the expected network failures.
    const unexpected = consoleErrors.filter((e) => !(ALLOWED[e.phase] && e.type !== 'pageerror' && ALLOWED[e.phase].test(e.text)));
    assert.deepEqual(unexpected, [], 'console errors');
    log(`console: no unexpected errors (${consoleErrors.length} expected network messages)`);
  } catch (err) {
    const shot = path.join(artifactsDir, 'failure.png');
    await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
    console.error(`[page.test] failure screenshot: ${shot}`);
    console.error(`[page.test] console messages so far: ${JSON.stringify(consoleErrors, null, 1)}`);
    throw err;
  }
}

const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
let code = 0;
try {
  await run(browser);
  console.log('BROWSER TEST PASSED');
} catch (err) {
  console.error(`[page.test] FAILED: ${err && err.stack || err}`);
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
