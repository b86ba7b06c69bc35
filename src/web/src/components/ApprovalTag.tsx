/** A deployment's approval state as a tag: "pending 1/2", "approved 2/2", "rejected"; nothing when none is needed. */
import { Tag, Tooltip } from 'antd';
import type { Approval } from '../api.ts';

const COLORS = { pending: 'gold', approved: 'green', rejected: 'red' } as const;

export function approvalText(a: Approval): string {
  return a.status === 'rejected' ? 'rejected' : `${a.status} ${a.approvals.length}/${a.required}`;
}

export function ApprovalTag({ approval }: { approval: Approval | null | undefined }) {
  if (!approval) return null;
  const who = approval.rejection
    ? `rejected by ${approval.rejection.user.email}${approval.rejection.comment ? `: ${approval.rejection.comment}` : ''}`
    : approval.approvals.length
      ? `approved by ${approval.approvals.map((x) => x.user.email).join(', ')}`
      : 'no approval yet';
  return (
    <Tooltip title={who}>
      <Tag color={COLORS[approval.status]} data-approval={approval.status}>
        {approvalText(approval)}
      </Tag>
    </Tooltip>
  );
}
