import t, { type Test } from 'tap';
import { encodeCommand, ProtocolErrorCode, RequestParser } from '../src/index.js';
import { chunkings, parseRequests } from './common/feed.js';

const bin = (text: string) => Buffer.from(text, 'latin1');

/** Asserts `input` parses to `expected` (and no error) however it is chunked. */
function expectCommands(t: Test, input: Buffer, expected: string[][], runs = 50): void {
  let checked = 0;
  for (const { name, chunks } of chunkings(input, runs)) {
    const { results, error } = parseRequests(chunks);
    // One assertion per chunking would flood the output; report only the first mismatch.
    if (error !== undefined || JSON.stringify(results) !== JSON.stringify(expected)) {
      t.same({ results, error: error?.code }, { results: expected, error: undefined }, name);
      return;
    }
    checked++;
  }
  t.ok(checked > runs, `parsed alike whole, byte by byte and at ${runs} random splits (${checked} chunkings)`);
}

/** Asserts `input` gives `commands` then the error `code` however it is chunked. */
function expectError(t: Test, input: Buffer, code: string, commands: string[][] = []): void {
  for (const { name, chunks } of chunkings(input, 20)) {
    const { results, error } = parseRequests(chunks);
    if (error?.code !== code || JSON.stringify(results) !== JSON.stringify(commands)) {
      t.equal(error?.code, code, `${name}: code`);
      t.same(results, commands, `${name}: commands before the error`);
      return;
    }
  }
  const { error } = parseRequests([input]);
  t.equal(error?.name, 'ProtocolError');
  t.equal(error?.code, code, `${JSON.stringify(input.toString('latin1'))} → ${code}: ${error?.message}`);
}

t.test('a RESP array of bulk strings', async (t) => {
  expectCommands(t, bin('*3\r\n$3\r\nGET\r\n$6\r\nmemory\r\n$8\r\ngreeting\r\n'), [['GET', 'memory', 'greeting']]);
  expectCommands(t, bin('*1\r\n$4\r\nPING\r\n'), [['PING']]);
  expectCommands(t, bin('*2\r\n$4\r\nPING\r\n$0\r\n\r\n'), [['PING', '']]);
});

t.test('binary bulk values, with CRLF, NUL and high bytes inside', async (t) => {
  const value = Buffer.from([0, 13, 10, 255, 36, 42, 13, 10, 13, 0]);
  const input = encodeCommand(['SET', 'memory', '0', Buffer.from([1, 0, 2]), value]);
  expectCommands(t, input, [['SET', 'memory', '0', '\x01\x00\x02', value.toString('latin1')]]);
});

t.test('inline requests', async (t) => {
  expectCommands(t, bin('GET memory greeting\r\n'), [['GET', 'memory', 'greeting']]);
  expectCommands(t, bin('GET memory greeting\n'), [['GET', 'memory', 'greeting']]);
  expectCommands(t, bin('  get \t memory   greeting \t \r\n'), [['get', 'memory', 'greeting']], 20);
  expectCommands(t, bin('PING\nQUIT\r\n'), [['PING'], ['QUIT']]);
  expectCommands(t, bin('GET a\rb c\n'), [['GET', 'a\rb', 'c']], 20);
});

t.test('SET takes the rest of the line, verbatim, as the value', async (t) => {
  const cases: Array<[string, string[]]> = [
    ['SET memory 0 greeting hello world\n', ['SET', 'memory', '0', 'greeting', 'hello world']],
    ['SET memory 0 greeting hello world\r\n', ['SET', 'memory', '0', 'greeting', 'hello world']],
    ['set   memory  0\tgreeting  two  spaces  \r\n', ['set', 'memory', '0', 'greeting', ' two  spaces  ']],
    ['SeT memory 0 k a\tb \t c\n', ['SeT', 'memory', '0', 'k', 'a\tb \t c']],
    ['SET memory 0 k \n', ['SET', 'memory', '0', 'k', '']],
    ['SET memory 0 k\n', ['SET', 'memory', '0', 'k']],
    ['SET memory 0\n', ['SET', 'memory', '0']],
    ['SET memory 0 k {"a": [1, 2]}\n', ['SET', 'memory', '0', 'k', '{"a": [1, 2]}']],
    // Other commands keep splitting on spaces.
    ['GET memory hello world\n', ['GET', 'memory', 'hello', 'world']],
  ];
  for (const [line, args] of cases) expectCommands(t, bin(line), [args], 10);
});

t.test('PUBLISH: options before the message are words, the message is the rest of the line', async (t) => {
  const cases: Array<[string, string[]]> = [
    ['PUBLISH orders eu.new hello world\n', ['PUBLISH', 'orders', 'eu.new', 'hello world']],
    ['PUBLISH orders eu.new DELAY 500 hello world\n', ['PUBLISH', 'orders', 'eu.new', 'DELAY', '500', 'hello world']],
    [
      'publish orders k delay 5 ttl 60000 id order-7 the  body\r\n',
      ['publish', 'orders', 'k', 'delay', '5', 'ttl', '60000', 'id', 'order-7', 'the  body'],
    ],
    // Nothing would be left for the message: the words are the message.
    ['PUBLISH orders k DELAY 5\n', ['PUBLISH', 'orders', 'k', 'DELAY 5']],
    ['PUBLISH orders k TTL\n', ['PUBLISH', 'orders', 'k', 'TTL']],
    // A word that is no option starts the message, and what follows it is message too.
    ['PUBLISH orders k hello DELAY 5\n', ['PUBLISH', 'orders', 'k', 'hello DELAY 5']],
    ['PUBLISH orders k DELAYS 5 x\n', ['PUBLISH', 'orders', 'k', 'DELAYS 5 x']],
  ];
  for (const [line, args] of cases) expectCommands(t, bin(line), [args], 10);
});

t.test('inline and RESP requests mix and pipeline, blank lines and *0 give nothing', async (t) => {
  const input = Buffer.concat([
    bin('SET memory 0 a hello world\r\n'),
    encodeCommand(['GET', 'memory', 'a']),
    bin('\r\n\n   \n\t\r\n'),
    bin('*0\r\n'),
    encodeCommand(['SET', 'hdd', '10', 'b', Buffer.from('x\r\ny\n')]),
    bin('HAS memory a\n'),
    bin('*0\r\n*1\r\n$4\r\nPING\r\n'),
    bin('PING\r\n'),
  ]);
  expectCommands(
    t,
    input,
    [
      ['SET', 'memory', '0', 'a', 'hello world'],
      ['GET', 'memory', 'a'],
      ['SET', 'hdd', '10', 'b', 'x\r\ny\n'],
      ['HAS', 'memory', 'a'],
      ['PING'],
      ['PING'],
    ],
    300,
  );
  t.same(parseRequests([bin('*0\r\n\r\n\n  \t \n*0\r\n')]).results, []);
});

t.test('malformed requests are PROTOCOL errors', async (t) => {
  const cases: Array<[string, string]> = [
    ['*-10\r\n', 'negative count'],
    ['*-1\r\n', 'negative count'],
    ['*abc\r\n', 'non-numeric count'],
    ['*\r\n', 'empty count'],
    ['*1x\r\n', 'junk after the count'],
    ['*1\n', 'bare LF after the count'],
    ['*1\r\r', 'CR not followed by LF'],
    [`*${'0'.repeat(40)}1\r\n`, 'header over 32 bytes'],
    ['*1\r\n$blabla\r\n', 'non-numeric bulk length'],
    ['*1\r\n$-1\r\n', 'negative bulk length'],
    ['*1\r\n$\r\n', 'empty bulk length'],
    ['*1\r\n\x00', 'NUL where a bulk header should be'],
    ['*2\r\n$3\r\nGET\r\n:1\r\n', 'a byte other than $'],
    ['*1\r\n$3\r\nGETxx', 'no CRLF after bulk data'],
    ['*1\r\n$3\r\nGET\rx', 'CR then not LF after bulk data'],
    ['*1\r\n$3\r\nGET\n', 'LF without CR after bulk data'],
    [`*1\r\n$${'0'.repeat(31)}\r\n`, 'bulk header over 32 bytes'],
  ];
  for (const [input, why] of cases) {
    t.test(why, async (t) => expectError(t, bin(input), ProtocolErrorCode.PROTOCOL));
  }
  t.test('commands before the bad frame are delivered', async (t) => {
    expectError(t, bin('PING\r\n*1\r\n$4\r\nQUIT\r\n*-10\r\nPING\r\n'), ProtocolErrorCode.PROTOCOL, [
      ['PING'],
      ['QUIT'],
    ]);
  });
});

t.test('after an error the parser keeps returning it and delivers nothing more', async (t) => {
  const seen: string[] = [];
  const parser = new RequestParser((request) => seen.push(request.args().join(' ')));
  const error = parser.push(bin('*abc\r\n'));
  t.equal(error?.code, 'PROTOCOL');
  t.equal(parser.push(bin('PING\r\n')), error);
  t.same(seen, []);
  t.equal(parser.buffered, 0);
});

t.test(
  'a command whole in its chunk is read in one pass; anything else falls back to the byte-by-byte reader',
  async (t) => {
    const get = encodeCommand(['GET', 'memory', 'k']);
    const set = encodeCommand(['SET', 'memory', '0', 'k', 'value']);
    // Whole commands, then the start of one that ends in the next chunk, at every cut.
    const pipeline = Buffer.concat([get, set, get]);
    for (let cut = get.length + 1; cut < pipeline.length; cut++) {
      const { results, error } = parseRequests([pipeline.subarray(0, cut), pipeline.subarray(cut)]);
      t.equal(error, undefined);
      if (results.length !== 3) t.fail(`cut at ${cut}: ${JSON.stringify(results)}`);
    }
    t.same(parseRequests([pipeline]).results, [
      ['GET', 'memory', 'k'],
      ['SET', 'memory', '0', 'k', 'value'],
      ['GET', 'memory', 'k'],
    ]);
    // Whole but over a limit, or malformed: the commands before are run, then the same error as byte by byte.
    const limited = (input: Buffer, limits: object) => parseRequests([Buffer.concat([get, input])], limits);
    const bulk = limited(encodeCommand(['SET', 'memory', '0', 'k', 'eleven byte']), { maxBulkLength: 10 });
    t.same([bulk.results.length, bulk.error?.code], [1, 'TOO_LARGE']);
    const array = limited(encodeCommand(['a', 'b', 'c', 'd']), { maxArrayLength: 3 });
    t.same([array.results.length, array.error?.code], [1, 'TOO_LARGE']);
    const crlf = limited(bin('*2\r\n$3\r\nGET\r\n$1\r\nkX\r\n'), {});
    t.same([crlf.results.length, crlf.error?.code], [1, 'PROTOCOL']);
    const digits = limited(bin(`*1\r\n$${'0'.repeat(31)}1\r\nk\r\n`), {});
    t.same([digits.results.length, digits.error?.code], [1, 'PROTOCOL']);
    t.same(parseRequests([bin('*0\r\n'), get]).results, [['GET', 'memory', 'k']], '*0 is ignored');
  },
);

t.test('limits', async (t) => {
  t.test('bulk length over the limit is TOO_LARGE as soon as its header is read', async (t) => {
    expectError(t, bin('*2\r\n$3\r\nSET\r\n$2000000000\r\n'), ProtocolErrorCode.TOO_LARGE);
    const parser = new RequestParser(() => t.fail('no command'));
    const error = parser.push(bin('*2\r\n$3\r\nSET\r\n$2000000000\r\n'));
    t.equal(error?.code, 'TOO_LARGE');
    t.match(error?.message, /2000000000/);
    t.equal(parser.buffered, 0, 'no payload buffered');
    const small = parseRequests([bin('*1\r\n$11\r\n')], { maxBulkLength: 10 });
    t.equal(small.error?.code, 'TOO_LARGE');
    t.same(parseRequests([bin('*1\r\n$10\r\n0123456789\r\n')], { maxBulkLength: 10 }).results, [['0123456789']]);
  });

  t.test('array count over the limit is TOO_LARGE', async (t) => {
    expectError(t, bin('*2000000\r\n'), ProtocolErrorCode.TOO_LARGE);
    expectError(t, bin('*99999999999999999999999\r\n'), ProtocolErrorCode.TOO_LARGE);
    t.equal(parseRequests([bin('*4\r\n')], { maxArrayLength: 3 }).error?.code, 'TOO_LARGE');
    const three = encodeCommand(['a', 'b', 'c']);
    t.same(parseRequests([three], { maxArrayLength: 3 }).results, [['a', 'b', 'c']]);
  });

  t.test('an inline line over the limit is TOO_LARGE before its newline arrives', async (t) => {
    const limit = 10_000;
    const chunkSize = 1000;
    const parser = new RequestParser(() => t.fail('no command'), { maxInlineLength: limit });
    let fed = 0;
    let error: ReturnType<RequestParser['push']>;
    while (error === undefined && fed < 10 * limit) {
      error = parser.push(Buffer.alloc(chunkSize, 'a'));
      fed += chunkSize;
      t.ok(parser.buffered <= limit + 1, 'never buffers beyond the limit');
    }
    t.equal(error?.code, 'TOO_LARGE');
    t.ok(fed <= limit + chunkSize, `detected after ${fed} bytes`);
  });

  t.test('a 100 MB line in one chunk is rejected without buffering it', async (t) => {
    const parser = new RequestParser(() => t.fail('no command'));
    const error = parser.push(Buffer.alloc(100 * 1024 * 1024, 'a'));
    t.equal(error?.code, 'TOO_LARGE');
    t.equal(parser.buffered, 0);
  });

  t.test('a line of exactly the limit passes, one byte more does not', async (t) => {
    const limit = 64;
    const exact = `GET ${'k'.repeat(limit - 4)}`;
    for (const ending of ['\n', '\r\n']) {
      const failed: string[] = [];
      for (const { name, chunks } of chunkings(bin(exact + ending), 20)) {
        const { results, error } = parseRequests(chunks, { maxInlineLength: limit });
        if (error !== undefined || results.length !== 1) failed.push(`${name}: ${error?.message}`);
      }
      t.same(failed, [], `a line of exactly ${limit} bytes parses under every chunking (${JSON.stringify(ending)})`);
      expectErrorWithLimit(t, bin(`${exact}k${ending}`), limit);
    }
  });
});

function expectErrorWithLimit(t: Test, input: Buffer, limit: number): void {
  for (const { name, chunks } of chunkings(input, 20)) {
    const { error } = parseRequests(chunks, { maxInlineLength: limit });
    if (error?.code !== 'TOO_LARGE') t.fail(`${name}: expected TOO_LARGE, got ${error?.code}`);
  }
}

t.test('invalid limits are rejected at construction', async (t) => {
  t.throws(() => new RequestParser(() => {}, { maxBulkLength: -1 }), RangeError);
  t.throws(() => new RequestParser(() => {}, { maxInlineLength: 1.5 }), RangeError);
  t.throws(() => new RequestParser(() => {}, { maxArrayLength: Number.NaN }), RangeError);
});

t.test('a large bulk arriving in many chunks is assembled once', async (t) => {
  const value = Buffer.alloc(16 * 1024 * 1024);
  for (let i = 0; i < value.length; i++) value[i] = i % 251;
  const input = encodeCommand(['SET', 'memory', '0', 'big', value]);
  let got: Buffer | undefined;
  const parser = new RequestParser((request) => {
    got = Buffer.from(request.arg(4));
  });
  const started = performance.now();
  for (let pos = 0; pos < input.length; pos += 1024) {
    const error = parser.push(input.subarray(pos, pos + 1024));
    if (error !== undefined) t.fail(error.message);
    if (got === undefined && pos > 0 && pos % (4 * 1024 * 1024) === 0) {
      // What is held is what has arrived (a list of pieces), not a preallocated value.
      if (parser.buffered > pos + 1024) t.fail(`buffered ${parser.buffered} after ${pos} bytes`);
    }
  }
  const elapsed = performance.now() - started;
  t.ok(got?.equals(value), 'the value arrives intact');
  t.equal(parser.buffered, 0);
  t.ok(elapsed < 3000, `16 MiB in 1 KiB chunks took ${elapsed.toFixed(0)} ms (no quadratic copying)`);
});

t.test('a command split across chunks survives the caller reusing its buffer', async (t) => {
  const input = Buffer.concat([encodeCommand(['SET', 'memory', '0', 'key', 'some value']), bin('GET memory key\n')]);
  const seen: string[][] = [];
  const parser = new RequestParser((request) => seen.push(request.args().map((arg) => arg.toString())));
  const scratch = Buffer.alloc(7);
  for (let pos = 0; pos < input.length; pos += 7) {
    const length = input.copy(scratch, 0, pos, pos + 7);
    t.equal(parser.push(scratch.subarray(0, length)), undefined);
    scratch.fill(0x58);
  }
  t.same(seen, [
    ['SET', 'memory', '0', 'key', 'some value'],
    ['GET', 'memory', 'key'],
  ]);
});

t.test('arguments are views of the chunk when the command lies within it', async (t) => {
  const chunk = encodeCommand(['GET', 'memory', 'key']);
  const parser = new RequestParser((request) => {
    t.equal(request.data, chunk, 'ranges of the chunk itself');
    for (const arg of request.args()) t.equal(arg.buffer, chunk.buffer, 'no copy');
  });
  t.equal(parser.push(chunk), undefined);
});

t.test('a Uint8Array chunk is accepted', async (t) => {
  const seen: string[][] = [];
  const parser = new RequestParser((request) => seen.push(request.args().map((arg) => arg.toString())));
  t.equal(parser.push(new Uint8Array(bin('PING hi\n'))), undefined);
  t.same(seen, [['PING', 'hi']]);
});

t.test('buffered counts the bytes held for an incomplete command', async (t) => {
  const parser = new RequestParser(() => {});
  t.equal(parser.buffered, 0);
  parser.push(bin('GET mem'));
  t.equal(parser.buffered, 7);
  parser.push(bin('ory k\n*2\r\n$3\r\nGET\r\n$5\r\nab'));
  t.equal(parser.buffered, 5, 'the copied GET and the two payload bytes');
  parser.push(bin('cde\r\n'));
  t.equal(parser.buffered, 0);
});

t.test('100k pipelined commands in one 3 MB chunk', async (t) => {
  const commands: Buffer[] = [];
  for (let i = 0; i < 100_000; i++) {
    commands.push(
      i % 2 === 0 ? encodeCommand(['SET', 'memory', '0', `key:${i}`, 'x']) : bin(`GET memory key:${i - 1}\r\n`),
    );
  }
  const chunk = Buffer.concat(commands);
  t.ok(chunk.length > 2_500_000 && chunk.length < 4_000_000, `${chunk.length} bytes`);
  let count = 0;
  let last = '';
  const parser = new RequestParser((request) => {
    count++;
    last = request.arg(2).toString();
  });
  const started = performance.now();
  t.equal(parser.push(chunk), undefined);
  const elapsed = performance.now() - started;
  t.equal(count, 100_000);
  t.equal(last, 'key:99998');
  t.ok(elapsed < 1000, `parsed in ${elapsed.toFixed(1)} ms`);
});

t.test(
  'an HTTP request line or header line stops the stream with CROSS_PROTOCOL, running nothing after it',
  async (t) => {
    // What a web page's fetch(..., {mode: 'no-cors'}) sends to the TCP port.
    const post = 'POST / HTTP/1.1\r\nHost: localhost:4242\r\nContent-Type: text/plain\r\n\r\nFLUSHALL hdd\n';
    expectError(t, bin(post), ProtocolErrorCode.CROSS_PROTOCOL);
    expectError(t, bin('GET /index.html HTTP/1.1\r\nHost: x\r\n\r\nSET memory 0 pwned 1\n'), 'CROSS_PROTOCOL');
    expectError(t, bin('PUT http://hati:4242/x HTTP/1.0\r\n'), 'CROSS_PROTOCOL');
    expectError(t, bin('OPTIONS * HTTP/1.1\r\n'), 'CROSS_PROTOCOL');
    // A header line alone, and one after commands that ran before it.
    expectError(t, bin('Host: evil.example\r\nFLUSHALL memory\n'), 'CROSS_PROTOCOL');
    expectError(t, bin('PING\ncontent-type: text/plain\nFLUSHALL hdd\n'), 'CROSS_PROTOCOL', [['PING']]);
    const { error } = parseRequests([bin(post)]);
    t.match(error?.message, /HTTP request \('POST \/ HTTP\/1\.1'\)/, 'the message shows the line');
  },
);

t.test('commands that only resemble HTTP stay commands', async (t) => {
  expectCommands(t, bin('GET memory HTTP/1.1\n'), [['GET', 'memory', 'HTTP/1.1']], 10);
  expectCommands(t, bin('DELETE hdd /index.html\n'), [['DELETE', 'hdd', '/index.html']], 10);
  expectCommands(t, bin('SET memory 0 page GET / HTTP/1.1\n'), [['SET', 'memory', '0', 'page', 'GET / HTTP/1.1']], 10);
  // RESP is binary-safe: an argument that looks like a header is only data.
  expectCommands(t, encodeCommand(['SET', 'memory', '0', 'Host:', 'x']), [['SET', 'memory', '0', 'Host:', 'x']], 10);
});

t.test('a lone \\r before a command name is dropped, as Redis does', async (t) => {
  expectCommands(t, bin('\rPING\r\n'), [['PING']], 20);
  expectCommands(t, bin('\r\rSET memory 0 k v\r\n'), [['SET', 'memory', '0', 'k', 'v']], 20);
  expectCommands(t, bin('PING\r\n\r\n\r\r\nPING\n'), [['PING'], ['PING']], 20);
});

t.test('stop() inside onCommand pauses parsing after that command; resume() goes on', async (t) => {
  const seen: string[][] = [];
  const parser: RequestParser = new RequestParser((request) => {
    seen.push(request.args().map((a) => a.toString('latin1')));
    parser.stop();
  });
  const input = bin(`PING a\r\n${encodeCommand(['PING', 'b']).toString('latin1')}PING c\nPING d`);
  t.equal(parser.push(input), undefined);
  t.same(seen, [['PING', 'a']], 'one command, then stopped');
  t.ok(parser.stopped);
  t.equal(parser.buffered, input.length - 8, 'the rest of the chunk is kept');
  // Input that arrives while stopped waits behind the kept rest.
  t.equal(parser.push(bin('\r\nPING e\n')), undefined);
  t.same(seen, [['PING', 'a']]);
  const order: string[] = [];
  while (parser.buffered > 0) {
    t.equal(parser.resume(), undefined);
    order.push((seen.at(-1) as string[])[1] as string);
  }
  t.same(order, ['b', 'c', 'd', 'e'], 'each resume() delivers the next command, in order');
  t.ok(parser.stopped, 'still stopped after the last command, though nothing is kept');
  t.equal(parser.resume(), undefined);
  t.notOk(parser.stopped);
  t.equal(parser.push(bin('PING f\n')), undefined);
  t.same(seen.at(-1), ['PING', 'f'], 'input after resume() is parsed at once');
});

t.test('a request within one chunk is ranges of that chunk, read in place', async (t) => {
  const chunk = Buffer.concat([
    encodeCommand(['GET', 'memory', 'key:1']),
    encodeCommand(['set', 'hdd', '0', 'k', 'v']),
  ]);
  const seen: Array<{ length: number; ranges: string[]; sizes: number[]; isGet: boolean; isSet: boolean }> = [];
  const parser = new RequestParser((request) => {
    const ranges: string[] = [];
    const sizes: number[] = [];
    for (let i = 0; i < request.length; i++) {
      ranges.push((request.data as Buffer).toString('latin1', request.start(i), request.end(i)));
      sizes.push(request.size(i));
    }
    seen.push({
      length: request.length,
      ranges,
      sizes,
      isGet: request.is(0, Buffer.from('GET')),
      isSet: request.is(0, Buffer.from('SET')),
    });
  });
  t.equal(parser.push(chunk), undefined);
  t.same(seen, [
    { length: 3, ranges: ['GET', 'memory', 'key:1'], sizes: [3, 6, 5], isGet: true, isSet: false },
    { length: 5, ranges: ['set', 'hdd', '0', 'k', 'v'], sizes: [3, 3, 1, 1, 1], isGet: false, isSet: true },
  ]);
});

t.test('a request spread over chunks is held as copies: no data, args() and arg() have them', async (t) => {
  const input = encodeCommand(['SET', 'memory', '0', 'key', 'a value']);
  const seen: Array<{ data: Buffer | undefined; args: string[]; second: string; size: number; isSet: boolean }> = [];
  const parser = new RequestParser((request) => {
    seen.push({
      data: request.data,
      args: request.args().map((arg) => arg.toString()),
      second: request.arg(1).toString(),
      size: request.size(4),
      isSet: request.is(0, Buffer.from('SET')),
    });
  });
  const scratch = Buffer.alloc(5);
  for (let pos = 0; pos < input.length; pos += 5) {
    // The same buffer for every chunk: a request kept as ranges of it would be overwritten.
    const n = input.copy(scratch, 0, pos, pos + 5);
    t.equal(parser.push(scratch.subarray(0, n)), undefined);
  }
  t.same(seen, [
    { data: undefined, args: ['SET', 'memory', '0', 'key', 'a value'], second: 'memory', size: 7, isSet: true },
  ]);
  t.equal(parser.buffered, 0, 'nothing held once delivered');
});

t.test('a request with more arguments than the first ranges table holds', async (t) => {
  const words = Array.from({ length: 100 }, (_, i) => `w${i}`);
  const seen: string[][] = [];
  const parser = new RequestParser((request) => seen.push(request.args().map(String)));
  t.equal(parser.push(encodeCommand(['MSET', ...words])), undefined);
  t.equal(parser.push(encodeCommand(['PING'])), undefined);
  t.same(seen, [['MSET', ...words], ['PING']], 'the table grows, and the next request starts afresh');
});

t.test('the request object is reused and cleared after each command', async (t) => {
  const requests = new Set<unknown>();
  let kept: { length: number; data: Buffer | undefined } | undefined;
  const parser = new RequestParser((request) => {
    requests.add(request);
    kept = request;
  });
  t.equal(parser.push(Buffer.concat([encodeCommand(['PING']), bin('PING a b\r\n')])), undefined);
  t.equal(requests.size, 1, 'one object for every request');
  t.equal(kept?.length, 0, 'emptied after onCommand');
  t.equal(kept?.data?.length, 0, 'and it no longer points at the chunk');
});
