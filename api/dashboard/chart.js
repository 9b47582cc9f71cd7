/* global document */
// The live chart (TradingView's lightweight-charts): one stream's candles, backfilled from
// GET /v1/market/klines and then fed by the machine's `candles` frames; the indicators my enabled
// traders read on that stream, computed by the runtime's own indicator code (machine-runtime/indicators.ts)
// so the lines are the numbers the machine compares; my signals on it as markers.
import {
  CandlestickSeries,
  ColorType,
  CrosshairMode,
  LineSeries,
  createChart,
  createSeriesMarkers,
} from 'lightweight-charts';
import { intervalMs } from '../../machine-runtime/candles';
import { StreamState, operandKey } from '../../machine-runtime/indicators';
import { $ } from './dom';

/** Every operand a filter reads (numbers aside); the filter was validated by the API when it was saved. */
function operandsOf(group) {
  const out = [];
  for (const n of group.all || group.any || []) {
    if (n.all || n.any) out.push(...operandsOf(n));
    else {
      out.push(n.left);
      if (typeof n.right !== 'number') out.push(n.right);
    }
  }
  return out;
}

const BACKFILL = 300;
const DEFAULT_STREAM = 'BTCUSDT|1m';
const COLORS = ['#f59e0b', '#a855f7', '#06b6d4', '#ec4899', '#84cc16', '#f97316', '#14b8a6', '#eab308'];
/** Indicators drawn over the candles (same scale as the price); the others get a pane each. */
const OVERLAY = new Set(['ema', 'sma', 'bollinger']);
const sec = (ms) => Math.floor(ms / 1000);
const streamKey = (symbol, interval) => `${symbol.toUpperCase()}|${interval}`;

/** Distinct operands (by the key the machine reports values under) my enabled traders read on a stream. */
function operandsFor(traders, symbol, interval) {
  const byKey = new Map();
  for (const t of traders) {
    const d = t.definition;
    if (!t.enabled || d.interval !== interval || !d.symbols.includes(symbol)) continue;
    for (const o of operandsOf(d.filter)) if (o.indicator !== 'price') byKey.set(operandKey(o), o);
  }
  return [...byKey.entries()];
}

export function createChartCard({ client, onError }) {
  const box = $('chart');
  const chart = createChart(box, {
    autoSize: true,
    layout: { background: { type: ColorType.Solid, color: '#171d24' }, textColor: '#8b98a5', panes: {} },
    grid: { vertLines: { color: '#1f2730' }, horzLines: { color: '#1f2730' } },
    crosshair: { mode: CrosshairMode.Normal },
    timeScale: { timeVisible: true, secondsVisible: false, borderColor: '#26303b' },
    rightPriceScale: { borderColor: '#26303b' },
  });
  const candles = chart.addSeries(CandlestickSeries, {
    upColor: '#22c55e',
    downColor: '#ef4444',
    wickUpColor: '#22c55e',
    wickDownColor: '#ef4444',
    borderVisible: false,
  });
  const markers = createSeriesMarkers(candles, []);

  let traders = [];
  let streams = []; // the machine's streams (hello), as "SYMBOL|interval"
  let current = null; // { symbol, interval, state: StreamState, lines: [[key, operand, series]], lastOpen, signals }
  let selected = null; // open time (ms) of the candle a signal click picked
  let loadSeq = 0;

  function setStatus(text) {
    $('chart-status').textContent = text;
  }

  /** The choices: the machine's streams, else my traders' streams. */
  function renderPicker() {
    const keys = new Set(streams);
    for (const t of traders) for (const s of t.definition.symbols) keys.add(streamKey(s, t.definition.interval));
    // Nothing followed yet: the market itself, so the chart is never an empty box.
    if (keys.size === 0) keys.add(DEFAULT_STREAM);
    const list = [...keys].sort();
    const picker = $('chart-stream');
    const chosen = current ? streamKey(current.symbol, current.interval) : picker.value;
    picker.replaceChildren(
      ...list.map((k) => {
        const [symbol, interval] = k.split('|');
        const opt = document.createElement('option');
        opt.value = k;
        opt.textContent = `${symbol} · ${interval}`;
        opt.selected = k === chosen;
        return opt;
      }),
    );
    picker.disabled = false;
    if (!current) void show(...list[0].split('|'));
  }

  function clearLines() {
    if (!current) return;
    for (const [, , series] of current.lines) chart.removeSeries(series);
    // Panes left empty by the removed series go too (pane 0 holds the candles).
    for (let i = chart.panes().length - 1; i > 0; i--) chart.removePane(i);
  }

  function renderMarkers() {
    if (!current) return;
    const list = current.signals
      .map((s) => ({
        time: sec(Date.parse(s.candleOpenAt)),
        position: 'belowBar',
        color: '#3b82f6',
        shape: 'arrowUp',
      }))
      .concat(
        selected === null
          ? []
          : [{ time: sec(selected), position: 'aboveBar', color: '#f59e0b', shape: 'arrowDown', text: 'selected' }],
      )
      .sort((a, b) => a.time - b.time);
    markers.setMarkers(list);
    box.dataset.markers = String(current.signals.length);
  }

  /** Feeds one closed candle to the chart and the indicators (older or repeated candles are skipped). */
  function add(c, draw) {
    if (current.lastOpen !== null && c.openTime <= current.lastOpen) return false;
    current.lastOpen = c.openTime;
    current.state.add({ ...c, symbol: current.symbol, interval: current.interval });
    const time = sec(c.openTime);
    if (draw) candles.update({ time, open: c.open, high: c.high, low: c.low, close: c.close });
    for (const [, o, series, points] of current.lines) {
      const v = current.state.value(o);
      const point = v === null ? { time } : { time, value: v };
      if (draw) series.update(point);
      else points.push(point);
    }
    return true;
  }

  /** Backfills and draws one stream; a later call wins over a slower earlier one. */
  async function show(symbol, interval) {
    const seq = ++loadSeq;
    clearLines();
    selected = null;
    setStatus(`Loading ${symbol} ${interval}…`);
    const state = new StreamState(BACKFILL + 200, symbol, interval);
    const wanted = operandsFor(traders, symbol, interval);
    state.require(wanted.map(([, o]) => o));
    let pane = 0;
    const lines = wanted.map(([key, o], i) => {
      const overlay = OVERLAY.has(o.indicator);
      const series = chart.addSeries(
        LineSeries,
        { color: COLORS[i % COLORS.length], lineWidth: 1, priceLineVisible: false, title: key },
        overlay ? 0 : ++pane,
      );
      return [key, o, series, []];
    });
    current = { symbol, interval, state, lines, lastOpen: null, signals: [] };
    box.dataset.stream = streamKey(symbol, interval);
    try {
      const [k, sig] = await Promise.all([
        client.klines({ symbol, interval, limit: BACKFILL }),
        client.signals({ symbol, interval, limit: 200 }),
      ]);
      if (seq !== loadSeq) return;
      for (const c of k.candles) add(c, false);
      candles.setData(
        k.candles.map((c) => ({ time: sec(c.openTime), open: c.open, high: c.high, low: c.low, close: c.close })),
      );
      for (const [, , series, points] of lines) series.setData(points.splice(0));
      current.signals = sig.signals;
      renderMarkers();
      box.dataset.bars = String(k.candles.length);
      const legend = lines.map(([key]) => key).join(', ');
      setStatus(`${symbol} ${interval} · ${k.candles.length} candles${legend ? ` · ${legend}` : ''}`);
    } catch (err) {
      if (seq === loadSeq) setStatus(`Could not load the candles: ${err.detail || err.message}`);
      if (onError) onError(err);
    }
  }

  $('chart-stream').addEventListener('change', (ev) => void show(...ev.target.value.split('|')));

  return {
    /** My traders changed: their streams and indicators. */
    setTraders(list, signedIn) {
      traders = list;
      if (!signedIn) {
        clearLines();
        current = null;
        candles.setData([]);
        markers.setMarkers([]);
        delete box.dataset.bars;
        return setStatus('Sign in to see the market.');
      }
      // The indicators follow the traders: redraw what is shown (renderPicker draws the first stream itself).
      const shown = current;
      renderPicker();
      if (shown) void show(shown.symbol, shown.interval);
    },
    /** The machine's `hello`: the streams it follows. */
    setStreams(list) {
      streams = list;
      renderPicker();
    },
    /** A closed candle from the stream. */
    onCandle(c) {
      if (!current || c.symbol !== current.symbol || c.interval !== current.interval) return;
      if (add(c, true)) box.dataset.bars = String(Number(box.dataset.bars || 0) + 1);
    },
    /** A live signal: a marker when it is on the charted stream. */
    onSignal(s) {
      if (!current || s.symbol !== current.symbol || s.interval !== current.interval) return;
      current.signals.push(s);
      renderMarkers();
    },
    /** Shows a signal's candle: switches stream if needed, centres the candle and marks it. */
    async showCandle(symbol, interval, openTime) {
      if (!current || current.symbol !== symbol || current.interval !== interval) {
        $('chart-stream').value = streamKey(symbol, interval);
        await show(symbol, interval);
      }
      selected = openTime;
      renderMarkers();
      // About 60 candles around it.
      const step = 30 * intervalMs(interval);
      chart.timeScale().setVisibleRange({ from: sec(openTime - step), to: sec(openTime + step) });
      box.dataset.selected = String(openTime);
      box.scrollIntoView({ block: 'nearest' });
    },
  };
}
