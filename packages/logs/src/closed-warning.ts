/** What a sink or store says of an event written after it closed. */
export function closedWarning(what: string): string {
  return `Switchyard's ${what} got an event after close(); it is dropped and counted in \`dropped\`. Close it after the requests in flight are logged (gateway.drain(), or in NestJS from a module SwitchyardModule imports)`;
}
