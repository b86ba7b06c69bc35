/** A deployment's state as a coloured tag that shows the state word itself. */
import { Tag } from 'antd';

const COLORS: Record<string, string> = {
  scheduled: 'blue',
  held: 'orange',
  running: 'processing',
  succeeded: 'success',
  failed: 'error',
  canceled: 'default',
  skipped: 'warning',
  missed: 'magenta',
};

export function StateTag({ state }: { state: string }) {
  return (
    <Tag color={COLORS[state] ?? 'default'} data-state={state}>
      {state}
    </Tag>
  );
}
