import t from 'tap';
import { run, tempDir } from '../src/index.js';

t.test('run: stdin fed, stdout, stderr and the exit code collected', async (t) => {
  const script =
    'let s = ""; process.stdin.on("data", (c) => (s += c)).on("end", () => { process.stdout.write(s.toUpperCase()); process.stderr.write("err"); process.exit(3); })';
  t.same(await run(process.execPath, ['-e', script], { input: 'hello\n', env: {} }), {
    code: 3,
    stdout: 'HELLO\n',
    stderr: 'err',
  });
  t.same(
    await run(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { timeoutMs: 200 }),
    {
      code: null,
      stdout: '',
      stderr: '',
    },
    'killed after its timeout',
  );
  await t.rejects(run('/nonexistent/hati-no-such-command', []), { code: 'ENOENT' });
  const dir = await tempDir(t);
  t.equal((await run(process.execPath, ['-e', 'process.stdout.write(process.cwd())'], { cwd: dir })).stdout, dir);
});
