export { createCloudExecutionClient, STREAM_PATH } from './api';
export type { AccessTokenProvider, CloudExecutionClient, CloudExecutionClientOptions } from './api';
export { createCloudWebSocketClient } from './compat';
export type { CloudWebSocketClient } from './compat';
export { CloudExecutionError, isCloudExecutionError } from './errors';
export { createCloudStreamClient } from './stream';
export type {
  CloudStreamClient,
  CloudStreamOptions,
  ConnectionHealth,
  ConnectionMetrics,
  ProbeResult,
  StopReason,
  StreamHandlers,
  StreamState,
  WebSocketConstructorLike,
  WebSocketLike,
} from './stream';
export { cpuPriorities, machineStates } from './schemas';
export type {
  CandleMessage,
  CandlesMessage,
  CpuPriority,
  CreateTraderRequest,
  HelloMessage,
  MachineState,
  MachineStatus,
  MetricsMessage,
  Options,
  ProvisionRequest,
  ProvisionResponse,
  SignalMessage,
  SignalsMessage,
  StateMessage,
  StopResponse,
  StreamMessage,
  StreamMessageType,
  Trader,
  TraderList,
  UpdateTraderRequest,
} from './schemas';
export { timelineKinds } from './schemas';
export type { TimelineEntry, TimelinePage, TimelineQuery, Uptime, UptimeQuery } from './schemas';
export { EVENTS_PATH } from './machine-events';
export type { MachineWatch, MachineWatchHandlers } from './machine-events';
export type {
  Kline,
  Klines,
  Preview,
  PreviewRequest,
  SignalList,
  SignalQuery,
  StoredSignal,
  Validation,
} from './market-schemas';
