// CsrMatrix (the sparse products behind the graph operators) and NodeFeatures against dense arithmetic.
#include "test_support.h"

#include <pdeq/nn/csr_matrix.h>
#include <pdeq/nn/node_features.h>

#include <torch/torch.h>

namespace pdeq::test {
namespace {

struct CsrMatrixTest : SeedingFixture {};

/// A 4 x 3 matrix with an empty row (2), an empty column (1) and a duplicate coordinate (0, 2) summed.
nn::CsrMatrix small_matrix(torch::ScalarType dtype = torch::kFloat) {
  const auto indices = torch::tensor({0, 3, 0, 1, 3, 0, 2, 2, 0, 0, 0, 2}, torch::kInt64).reshape({2, 6});
  const auto values = torch::tensor({1.5, 5.0, 1.0, -4.0, 3.0, 0.5}, dtype);
  return nn::CsrMatrix::from_coo(indices, values, 4, 3);
}

torch::Tensor small_dense(torch::ScalarType dtype = torch::kFloat) {
  // (0, 2) = 1.5 + 0.5 from the duplicate.
  return torch::tensor({1.0, 0.0, 2.0, -4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0, 5.0}, dtype).reshape({4, 3});
}

TEST_F(CsrMatrixTest, BuildsSortedRowsAndSumsDuplicates) {
  const auto m = small_matrix();
  EXPECT_EQ(m.rows(), 4);
  EXPECT_EQ(m.cols(), 3);
  EXPECT_EQ(m.nnz(), 5);
  EXPECT_TRUE(torch::equal(m.row_ptr(), torch::tensor({0, 2, 3, 3, 5}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(m.col(), torch::tensor({0, 2, 0, 0, 2}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(m.to_dense(), small_dense()));
}

TEST_F(CsrMatrixTest, ProductEqualsTheDenseProductInFloatAndDouble) {
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    const auto m = small_matrix(dtype);
    const auto x = torch::randn({3, 5}, dtype);
    EXPECT_TRUE(torch::allclose(m.matmul(x), torch::mm(small_dense(dtype), x)));
    const auto y = torch::randn({4, 2}, dtype);
    EXPECT_TRUE(torch::allclose(m.transposed().matmul(y), torch::mm(small_dense(dtype).t(), y)));
    EXPECT_TRUE(torch::equal(m.transposed().transposed().to_dense(), m.to_dense()));
  }
}

TEST_F(CsrMatrixTest, BackwardIsTheTransposedProduct) {
  const auto m = small_matrix(torch::kDouble);
  const auto x = torch::randn({3, 4}, torch::kDouble).requires_grad_(true);
  const auto g = torch::randn({4, 4}, torch::kDouble);
  m.matmul(x).backward(g);
  EXPECT_TRUE(torch::allclose(x.grad(), torch::mm(small_dense(torch::kDouble).t(), g)));
  // A non-contiguous right-hand side (a transposed weight) gets its gradient in its own layout.
  const auto w = torch::randn({4, 3}, torch::kDouble).requires_grad_(true);
  m.matmul(w.t()).sum().backward();
  EXPECT_TRUE(torch::allclose(
      w.grad(), torch::mm(small_dense(torch::kDouble).t(), torch::ones({4, 4}, torch::kDouble)).t()));
  // Second derivatives exist: d/dx of <S x, S x> = 2 S^T S x, differentiated again along x.
  const auto x2 = torch::randn({3, 2}, torch::kDouble).requires_grad_(true);
  const auto gx = torch::autograd::grad({m.matmul(x2).square().sum()}, {x2}, {}, true, true)[0];
  const auto hx = torch::autograd::grad({gx.sum()}, {x2})[0];
  const auto d = small_dense(torch::kDouble);
  EXPECT_TRUE(torch::allclose(hx, 2 * torch::mm(torch::mm(d.t(), d), torch::ones({3, 2}, torch::kDouble))));
}

TEST_F(CsrMatrixTest, WithValuesKeepsThePatternAndItsTranspose) {
  const auto m = small_matrix().with_values(torch::tensor({1.0f, 2.0f, 3.0f, 4.0f, 5.0f}));
  const auto expected =
      torch::tensor({1.0f, 0.0f, 2.0f, 3.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 4.0f, 0.0f, 5.0f}).reshape({4, 3});
  EXPECT_TRUE(torch::equal(m.to_dense(), expected));
  EXPECT_TRUE(torch::equal(m.transposed().to_dense(), expected.t()));
  const auto y = torch::randn({4, 3});
  EXPECT_TRUE(torch::allclose(m.transposed().matmul(y), torch::mm(expected.t(), y)));
}

TEST_F(CsrMatrixTest, RejectsBadInput) {
  const auto idx = torch::tensor({0, 5, 0, 1}, torch::kInt64).reshape({2, 2});
  PDEQ_ASSERT_THROWS_WITH(nn::CsrMatrix::from_coo(idx, torch::ones({2}), 4, 3), "indices must lie in [0, 4)");
  PDEQ_ASSERT_THROWS_WITH(nn::CsrMatrix::from_coo(idx, torch::ones({3}), 6, 3), "values must be");
  PDEQ_ASSERT_THROWS_WITH(small_matrix().matmul(torch::ones({4, 2})), "expected a dense [3, C] matrix");
}

TEST_F(CsrMatrixTest, SparseAndDenseNodeFeaturesGiveTheSameProduct) {
  const auto dense = torch::rand({30, 20}) * (torch::rand({30, 20}) < 0.2);
  const nn::NodeFeatures sparse_features(dense.to_sparse()), dense_features(dense);
  EXPECT_TRUE(sparse_features.is_sparse());
  EXPECT_FALSE(dense_features.is_sparse());
  EXPECT_EQ(sparse_features.num_nodes(), 30);
  EXPECT_EQ(sparse_features.num_features(), 20);
  const auto w = torch::randn({20, 8});
  EXPECT_TRUE(torch::allclose(sparse_features.matmul(w), dense_features.matmul(w), 1e-5, 1e-5));
  EXPECT_TRUE(torch::equal(sparse_features.to_dense(), dense));
}

TEST_F(CsrMatrixTest, NodeFeatureDropoutKeepsTheDenseExpectation) {
  const nn::NodeFeatures x(torch::ones({200, 50}).to_sparse());
  const auto y = x.dropout(0.5, true).to_dense();
  const auto kept = y.ne(0).to(torch::kDouble).mean().item<double>();
  EXPECT_NEAR(kept, 0.5, 0.03);
  EXPECT_TRUE((y.eq(0) | y.eq(2)).all().item<bool>());
  EXPECT_TRUE(torch::equal(x.dropout(0.5, false).to_dense(), torch::ones({200, 50})));
  // The product uses the dropped values: ones x 1 = the kept count per row, times 2.
  const auto rows = x.dropout(0.5, true).matmul(torch::ones({50, 1}));
  EXPECT_TRUE((rows.remainder(2) == 0).all().item<bool>());
}

}  // namespace
}  // namespace pdeq::test
