// Typed events: what a session tells its subscribers (the CLI's progress bar and log lines, the metrics, a
// library caller) without knowing who they are. A subscriber that throws is logged, never breaks the run.
import type { Logger } from '../logger.js';

export type Listener<E> = (event: E) => void;
/** One optional listener per event, as options of a library call take them. */
export type Listeners<Events> = { [K in keyof Events]?: Listener<Events[K]> };

export class TypedEvents<Events> {
  private readonly listeners: { [K in keyof Events]?: Listener<Events[K]>[] } = {};

  constructor(private readonly logger: Logger) {}

  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): this {
    (this.listeners[event] ??= []).push(listener);
    return this;
  }

  /** Subscribes every listener given (e.g. the `on` option of runMigration). */
  subscribe(listeners: Listeners<Events> | undefined): this {
    for (const key of Object.keys(listeners ?? {}) as (keyof Events)[]) {
      const listener = listeners?.[key];
      if (listener) this.on(key, listener);
    }
    return this;
  }

  emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    for (const listener of this.listeners[event] ?? []) {
      try {
        listener(payload);
      } catch (err) {
        this.logger.warn({ err, event: String(event) }, 'an event subscriber failed');
      }
    }
  }
}
