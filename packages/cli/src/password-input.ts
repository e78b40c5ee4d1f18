// A password for `hati users`: never a flag's value (ps and shell history would keep it). Piped
// in, it is the first line of stdin; on a terminal it is typed twice, without echo.

/** The stream a password is read from; a terminal has `isTTY` and `setRawMode`. */
export type PasswordInput = NodeJS.ReadableStream & {
  isTTY?: boolean;
  setRawMode?: (raw: boolean) => unknown;
};

/** Why no password was read: shown as one line, exit 1. */
export class PasswordInputError extends Error {
  override name = 'PasswordInputError';
}

/**
 * The password: on a terminal asked twice (`Password for 'app': `, `Again: `) with the prompts
 * on `prompt`, otherwise the first line of `input` without its line ending. Rejects with a
 * PasswordInputError when none is given, the two differ, or Ctrl-C is typed.
 */
export async function readPassword(input: PasswordInput, prompt: (text: string) => void, who: string): Promise<string> {
  if (input.isTTY === true && input.setRawMode !== undefined) {
    const first = await typeHidden(input, prompt, `Password for '${who}': `);
    if (first === '') throw new PasswordInputError('an empty password is not allowed');
    const again = await typeHidden(input, prompt, 'Again: ');
    if (again !== first) throw new PasswordInputError('the two passwords differ');
    return first;
  }
  const line = await firstLine(input);
  if (line === undefined || line === '') {
    throw new PasswordInputError(
      'no password on stdin: pipe it in (its first line is the password), or run on a terminal to type it',
    );
  }
  return line;
}

/**
 * A password typed once on a terminal without echo (`hati client --askpass`, as redis-cli's), the
 * prompt on `prompt`. Rejects with a PasswordInputError when `input` is not a terminal, nothing is
 * typed, or Ctrl-C is.
 */
export async function askPassword(input: PasswordInput, prompt: (text: string) => void): Promise<string> {
  if (input.isTTY !== true || input.setRawMode === undefined) {
    throw new PasswordInputError('--askpass needs a terminal to type the password on; set HATI_PASSWORD instead');
  }
  const password = await typeHidden(input, prompt, 'Password: ');
  if (password === '') throw new PasswordInputError('no password typed');
  return password;
}

/** The first line of a stream (`\n` or `\r\n` dropped), or undefined when it ends empty. */
function firstLine(input: NodeJS.ReadableStream): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const finish = (value: string | undefined) => {
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onError);
      input.pause();
      resolve(value);
    };
    const onData = (chunk: Buffer | string) => {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      const newline = bytes.indexOf(0x0a);
      if (newline === -1) {
        chunks.push(bytes);
        return;
      }
      chunks.push(bytes.subarray(0, newline));
      finish(Buffer.concat(chunks).toString('utf8').replace(/\r$/, ''));
    };
    const onEnd = () => {
      const text = Buffer.concat(chunks).toString('utf8').replace(/\r$/, '');
      finish(text === '' ? undefined : text);
    };
    const onError = (err: Error) => {
      input.off('data', onData);
      input.off('end', onEnd);
      reject(new PasswordInputError(`cannot read stdin: ${err.message}`));
    };
    input.on('data', onData);
    input.once('end', onEnd);
    input.once('error', onError);
    input.resume();
  });
}

/** One line typed on a terminal in raw mode, echoing nothing. Backspace and Ctrl-U edit; Ctrl-C and Ctrl-D give up. */
function typeHidden(input: PasswordInput, prompt: (text: string) => void, text: string): Promise<string> {
  prompt(text);
  input.setRawMode?.(true);
  return new Promise((resolve, reject) => {
    let value = '';
    // Inside an escape sequence (an arrow key): skipped up to its final letter or `~`.
    let inEscape = false;
    const finish = () => {
      input.off('data', onData);
      input.setRawMode?.(false);
      input.pause();
      // Enter was not echoed either: the next line starts on a line of its own.
      prompt('\n');
    };
    const onData = (chunk: Buffer | string) => {
      const chars = [...(typeof chunk === 'string' ? chunk : chunk.toString('utf8'))];
      for (const [i, ch] of chars.entries()) {
        if (inEscape) {
          if (/[A-Za-z~]/.test(ch)) inEscape = false;
          continue;
        }
        if (ch === '\r' || ch === '\n') {
          finish();
          // A paste of both lines at once: what follows Enter is the next question's answer.
          const rest = chars.slice(ch === '\r' && chars[i + 1] === '\n' ? i + 2 : i + 1).join('');
          if (rest !== '') input.unshift(Buffer.from(rest));
          resolve(value);
          return;
        }
        if (ch === '\u0003' || (ch === '\u0004' && value === '')) {
          finish();
          reject(new PasswordInputError(ch === '\u0003' ? 'interrupted' : 'no password typed'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('');
        else if (ch === '\u0015') value = '';
        else if (ch === '\u001b') inEscape = true;
        else if (ch >= ' ') value += ch;
      }
    };
    input.on('data', onData);
    input.resume();
  });
}
