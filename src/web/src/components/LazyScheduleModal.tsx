/**
 * The schedule modal brings the Temporal polyfill and the date/time pickers; it is loaded on the
 * first click of "Schedule deployment" / "Reschedule" so the first page stays small.
 */
import { Suspense, lazy, type ComponentProps } from 'react';
import type { ScheduleModal as Modal } from './ScheduleModal.tsx';

const Inner = lazy(() => import('./ScheduleModal.tsx').then((m) => ({ default: m.ScheduleModal })));

export type { ScheduleTarget } from './ScheduleModal.tsx';

export function ScheduleModal(props: ComponentProps<typeof Modal>) {
  return (
    <Suspense fallback={null}>
      <Inner {...props} />
    </Suspense>
  );
}
