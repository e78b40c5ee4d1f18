/**
 * Bytes held by unfinished requests across every connection of a server, against one limit:
 * a few clients that each start a large bulk string and never finish it must not be able to
 * hold all the memory between them. Each connection charges what its parser holds and gives
 * it back when it closes.
 */
export class InputBudget {
  readonly limit: number;
  used = 0;

  constructor(limit: number) {
    this.limit = limit;
  }
}
