export { checkErrorsDoc, ERRORS_DOC, type ErrorsDocSection } from './errors-doc.js';
export { type FakeClock, fakeClock } from './fake-clock.js';
export { holds } from './holds.js';
export { type PostAnswer, type PostOptions, postJson } from './post-json.js';
export { type Address, type HasAddresses, RawClient, text } from './raw-client.js';
export { encodeCommand, type Reply, ReplyError, type ReplyMap, RespReader, showReply } from './resp-reader.js';
export { type Run, type RunOptions, run } from './run.js';
export {
  type Harness,
  type LoggerClass,
  rpcPost,
  type ServerClass,
  type ServerLike,
  startServer,
} from './server-harness.js';
export { tempDir } from './temp-dir.js';
export { within } from './within.js';
